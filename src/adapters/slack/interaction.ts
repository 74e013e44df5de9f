/**
 * Slack interaction payloads → the core's submissions, and the core's replies → a modal's answer.
 * Pure functions: everything here is checked before the core sees anything, so a malformed payload
 * is refused whole and nothing is half-saved.
 */
import type { ViewStateValue } from '@slack/bolt';
import { z } from 'zod';
import { submissionSchema, type Submission } from '../../bot/inbound.ts';
import type { Card, Reply } from '../../bot/reply.ts';
import { INPUT_ACTION_IDS, LIMITS, clip, inputsOf, type FormMetadata } from './block-kit.ts';

/** A submit button's value: the action's data, or a reference to the stored form's action. */
export type ButtonValue = { kind: 'data'; data: Submission } | { kind: 'stored'; form: string; action: number };

const storedActionSchema = z.object({ form: z.string().min(1).max(100), action: z.number().int().min(0).max(100) }).strict();

export function parseButtonValue(value: unknown): ButtonValue | undefined {
  if (typeof value !== 'string' || value.length > LIMITS.buttonValue) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  const stored = storedActionSchema.safeParse(parsed);
  if (stored.success) return { kind: 'stored', ...stored.data };
  const data = submissionSchema.safeParse(parsed);
  return data.success ? { kind: 'data', data: data.data } : undefined;
}

const formIdSchema = z.object({ form: z.string().min(1).max(100) }).strict();

/** The value of an "Open form" button. */
export function parseOpenFormValue(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const parsed = formIdSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data.form : undefined;
  } catch {
    return undefined;
  }
}

const metadataSchema = z.object({
  v: z.literal(1),
  kind: z.string().min(1).max(100),
  data: submissionSchema.optional(),
  form: z.string().min(1).max(100).optional(),
  action: z.number().int().min(0).max(100).optional(),
  conversation: z.object({ id: z.string().min(1).max(100), kind: z.enum(['personal', 'group', 'channel']) }).optional(),
}).refine((metadata) => metadata.data !== undefined || (metadata.form !== undefined && metadata.action !== undefined), 'needs the submit data or the stored form and action');

/** A modal's private_metadata, or undefined when it is not one of ours or was tampered with. */
export function parseMetadata(raw: unknown): FormMetadata | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > LIMITS.privateMetadata) return undefined;
  try {
    const parsed = metadataSchema.safeParse(JSON.parse(raw));
    return parsed.success ? (parsed.data as FormMetadata) : undefined;
  } catch {
    return undefined;
  }
}

export type ViewState = Record<string, Record<string, ViewStateValue>>;

/**
 * A modal's values in the shape an Adaptive Card submit has: strings; a multi-select comma-joined;
 * a toggle 'true' or 'false'; an empty field ''. Unknown element types are a malformed payload.
 */
export function normaliseViewState(values: unknown): { values: Record<string, string> } | { problem: string } {
  if (values === undefined || values === null) return { values: {} };
  if (typeof values !== 'object' || Array.isArray(values)) return { problem: 'state.values is not an object' };
  const result: Record<string, string> = {};
  for (const [blockId, actions] of Object.entries(values as Record<string, unknown>)) {
    if (!actions || typeof actions !== 'object') return { problem: `state.values.${blockId} is not an object` };
    const entries = Object.entries(actions as Record<string, ViewStateValue>);
    if (entries.length !== 1) return { problem: `state.values.${blockId} has ${entries.length} elements` };
    const [actionId, state] = entries[0]!;
    if (!state || typeof state !== 'object') return { problem: `state.values.${blockId}.${actionId} is not an object` };
    const optionValues = (options: unknown): string[] | undefined =>
      Array.isArray(options) && options.every((o) => o && typeof o.value === 'string') ? options.map((o) => o.value as string) : undefined;
    switch (state.type) {
      case 'plain_text_input':
        if (state.value !== undefined && state.value !== null && typeof state.value !== 'string') return { problem: `${blockId}: value is not text` };
        result[blockId] = state.value ?? '';
        break;
      case 'radio_buttons':
      case 'static_select': {
        const option = state.selected_option;
        if (option !== undefined && option !== null && typeof option.value !== 'string') return { problem: `${blockId}: selected_option has no value` };
        result[blockId] = option?.value ?? '';
        break;
      }
      case 'checkboxes':
      case 'multi_static_select': {
        const picked = optionValues(state.selected_options ?? []);
        if (!picked) return { problem: `${blockId}: selected_options is malformed` };
        result[blockId] = actionId === INPUT_ACTION_IDS.toggle ? (picked.includes('true') ? 'true' : 'false') : picked.join(',');
        break;
      }
      case 'datepicker':
        if (state.selected_date !== undefined && state.selected_date !== null && !/^\d{4}-\d{2}-\d{2}$/.test(String(state.selected_date))) return { problem: `${blockId}: selected_date is not a date` };
        result[blockId] = state.selected_date ?? '';
        break;
      default:
        return { problem: `${blockId}: element type ${String(state.type).slice(0, 40)} is not one this bot renders` };
    }
  }
  return { values: result };
}

/**
 * The submission for a modal: the submit action's data with the form's values. The action's data
 * wins over an input of the same name, so a form can never change the route it is sent to.
 */
export function submissionFrom(data: Record<string, unknown>, values: Record<string, string>): Submission | undefined {
  const parsed = submissionSchema.safeParse({ ...values, ...data });
  return parsed.success ? parsed.data : undefined;
}

/** How to answer a view_submission, given the core's replies. */
export type ViewAnswer =
  /** The same form came back with per-field errors, every one on a field the modal shows. */
  | { kind: 'errors'; errors: Record<string, string>; rest: Reply[] }
  /** The same form came back with errors the modal cannot show in place (the form changed): show it again. */
  | { kind: 'update'; card: Card; rest: Reply[] }
  /** Anything else: close the modal and deliver the replies. */
  | { kind: 'close'; replies: Reply[] };

export function answerForView(replies: Reply[], kind: string, shownBlockIds: Iterable<string>): ViewAnswer {
  const index = replies.findIndex((reply) => reply.type === 'card' && reply.card.kind === kind && inputsOf(reply.card).some((input) => input.error));
  if (index < 0) return { kind: 'close', replies };
  const card = (replies[index] as Extract<Reply, { type: 'card' }>).card;
  const rest = replies.filter((_, i) => i !== index);
  const shown = new Set(shownBlockIds);
  const inputs = inputsOf(card);
  const sameFields = inputs.length === shown.size && inputs.every((input) => shown.has(input.id));
  if (!sameFields) return { kind: 'update', card, rest };
  const errors = Object.fromEntries(inputs.filter((input) => input.error).map((input) => [input.id, clip(input.error!, 2000)]));
  return { kind: 'errors', errors, rest };
}

/**
 * What someone typed, as plain text: Slack sends message and command text with its own markup
 * (&amp; &lt; &gt; entities, <@U…> mentions, <#C…|name> channels, <url|label> links, <!here>).
 * The core reads words, so each becomes what the person saw.
 */
export function fromSlackText(value: string): string {
  return value
    .replace(/<([^<>]*)>/g, (_match, inner: string) => {
      const [target = '', label] = inner.split('|', 2);
      if (target.startsWith('@')) return label ? `@${label}` : target;
      if (target.startsWith('#')) return label ? `#${label}` : target;
      if (target.startsWith('!')) {
        const special = target.slice(1).split('^')[0]!;
        return label ?? (['here', 'channel', 'everyone'].includes(special) ? `@${special}` : '');
      }
      return label ?? target.replace(/^mailto:/, '');
    })
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
