/**
 * Forms defined once as data: fields, validation (zod) and rules that depend on other answers.
 * The same definition becomes an Adaptive Card form (Teams), a modal (Slack) or prompts one at a
 * time (terminal), because every surface renders the neutral Card it produces.
 */
import { z } from 'zod';
import type { Action, Block, Card, Input } from '../bot/reply.ts';

export interface FieldChoice {
  value: string;
  title: string;
}

interface FieldBase {
  id: string;
  label: string;
  /** Shown under the label in surfaces that can. */
  hint?: string;
  required?: boolean;
  /** Only asked (and only validated) when this returns true for the answers so far. */
  when?: (values: FormValues) => boolean;
  /** Confidential fields are marked as such on the form and never logged. */
  confidential?: boolean;
}

export type FieldDefinition =
  | (FieldBase & { kind: 'text'; multiline?: boolean; maxLength: number })
  | (FieldBase & { kind: 'choice'; choices: FieldChoice[]; multiple?: boolean })
  | (FieldBase & { kind: 'yesno' })
  | (FieldBase & { kind: 'datetime' });

export type FormValues = Record<string, string | string[] | boolean | undefined>;

export interface FormDefinition {
  id: string;
  title: string;
  intro?: string;
  fields: FieldDefinition[];
  /** Cross-field rules: return field id → message for each problem. */
  /** Checks across fields; `now` is the moment the form is checked (the clock of validateForm). */
  rules?: (values: FormValues, now: Date) => Record<string, string>;
}

export type FieldErrors = Record<string, string>;

/** A date as people type it: ISO ("2026-11-24 10:30"), or "today 10:30" / "yesterday". */
export function parseWhen(text: string, now = new Date()): Date {
  const relative = /^(today|yesterday)(?:\s+(?:at\s+)?(\d{1,2})[:.](\d{2}))?$/i.exec(text.trim());
  if (relative) {
    const date = new Date(now);
    if (relative[1]!.toLowerCase() === 'yesterday') date.setDate(date.getDate() - 1);
    if (relative[2]) date.setHours(Number(relative[2]), Number(relative[3]), 0, 0);
    return date;
  }
  return new Date(text.trim().replace(/^(\d{4}-\d{2}-\d{2}) (\d)/, '$1T$2'));
}

const asString = (value: unknown): string | undefined => {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.join(',');
  return String(value).trim();
};

/**
 * Turns raw submitted data (Adaptive Card strings, Slack values, typed answers) into typed values,
 * with one clear message per bad field. Unknown keys are ignored, so a forged extra field does nothing.
 */
/** `now` resolves "today 10:30" and "yesterday" and is what the rules compare with (tests pass a fixed one). */
export function validateForm(form: FormDefinition, raw: Record<string, unknown>, now = new Date()): { values: FormValues; errors: FieldErrors } {
  const values: FormValues = {};
  const errors: FieldErrors = {};
  for (const field of form.fields) {
    const text = asString(raw[field.id]);
    switch (field.kind) {
      case 'text':
        if (text) values[field.id] = text;
        if (text && text.length > field.maxLength) errors[field.id] = `${field.label}: at most ${field.maxLength} characters (you wrote ${text.length}).`;
        break;
      case 'choice': {
        const picked = (text ?? '').split(',').map((v) => v.trim()).filter(Boolean);
        const unknown = picked.filter((v) => !field.choices.some((c) => c.value === v));
        if (unknown.length) errors[field.id] = `${field.label}: choose from the list.`;
        else if (picked.length) values[field.id] = field.multiple ? picked : picked[0];
        if (!field.multiple && picked.length > 1) errors[field.id] = `${field.label}: choose one.`;
        break;
      }
      case 'yesno':
        if (text === 'true' || text === 'yes') values[field.id] = true;
        else if (text === 'false' || text === 'no') values[field.id] = false;
        else if (text) errors[field.id] = `${field.label}: answer yes or no.`;
        break;
      case 'datetime':
        if (text) {
          const parsed = z.string().max(40).safeParse(text);
          const date = parsed.success ? parseWhen(text, now) : new Date(Number.NaN);
          if (Number.isNaN(date.getTime())) errors[field.id] = `${field.label}: not a date I understand (use e.g. 2026-11-24 or 2026-11-24T10:30).`;
          else values[field.id] = /^(today|yesterday)\b/i.test(text) ? date.toISOString().slice(0, 16) : text;
        }
        break;
    }
  }
  for (const field of form.fields) {
    const asked = field.when ? field.when(values) : true;
    if (!asked) {
      delete values[field.id];
      delete errors[field.id];
      continue;
    }
    const value = values[field.id];
    const empty = value === undefined || value === '' || (Array.isArray(value) && value.length === 0);
    if (field.required && empty && !errors[field.id]) errors[field.id] = `${field.label}: please answer this.`;
  }
  Object.assign(errors, Object.fromEntries(Object.entries(form.rules?.(values, now) ?? {}).filter(([id]) => !errors[id])));
  return { values, errors };
}

function inputFor(field: FieldDefinition, value: FormValues[string], error: string | undefined): Input {
  const label = `${field.label}${field.confidential ? ' (confidential)' : ''}`;
  // A field that is only sometimes required cannot be marked required on a card (the client would
  // block an honest submit); the server enforces it when its condition holds.
  field = { ...field, required: field.required && !field.when };
  switch (field.kind) {
    case 'text':
      return { kind: 'text', id: field.id, label, multiline: field.multiline, required: field.required, maxLength: field.maxLength, placeholder: field.hint, value: typeof value === 'string' ? value : undefined, error };
    case 'choice':
      return { kind: 'choice', id: field.id, label, choices: field.choices, multiple: field.multiple, required: field.required, value: Array.isArray(value) ? value.join(',') : typeof value === 'string' ? value : undefined, error };
    case 'yesno':
      return { kind: 'choice', id: field.id, label, choices: [{ title: 'Yes', value: 'true' }, { title: 'No', value: 'false' }], required: field.required, value: value === undefined ? undefined : String(value), error };
    case 'datetime':
      return { kind: 'text', id: field.id, label, required: field.required, placeholder: field.hint ?? 'e.g. today 10:30, or 2026-11-24 10:30', value: typeof value === 'string' ? value : undefined, error, maxLength: 40 };
  }
}

/**
 * The form as a card. Every field is shown (surfaces cannot hide fields as answers change), and
 * fields whose `when` does not apply are simply not required; the hint says when they matter.
 */
export function formCard(form: FormDefinition, options: { values?: FormValues; errors?: FieldErrors; submit: Action & { type: 'submit' }; extraActions?: Action[]; before?: Block[] }): Card {
  const errors = options.errors ?? {};
  const errorCount = Object.keys(errors).length;
  return {
    kind: `form.${form.id}`,
    title: form.title,
    tone: errorCount ? 'attention' : 'default',
    blocks: [
      ...(options.before ?? []),
      ...(form.intro ? [{ type: 'text' as const, text: form.intro }] : []),
      ...(errorCount ? [{ type: 'text' as const, style: 'attention' as const, text: `Please check ${errorCount === 1 ? 'one answer' : `${errorCount} answers`}: nothing is lost, your answers are kept.` }] : []),
      ...form.fields.map((field) => ({ type: 'input' as const, input: inputFor(field, options.values?.[field.id], errors[field.id]) })),
    ],
    actions: [options.submit, ...(options.extraActions ?? [])],
  };
}
