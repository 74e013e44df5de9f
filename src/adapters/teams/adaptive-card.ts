/**
 * Renders a neutral Card as an Adaptive Card 1.5 (what Teams renders). Text is escaped so that
 * policy or user text can never inject Markdown links or mentions into the card.
 */
import type { Action, Block, Card, Input } from '../../bot/reply.ts';

export const ADAPTIVE_CARD_VERSION = '1.5';
export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

type Json = Record<string, unknown>;

/** Adaptive Cards render a Markdown subset in TextBlocks; escape what it would interpret. */
export function escapeCardText(value: string): string {
  return value.replace(/([\\`*_{}[\]()#+\-.!<>|~])/g, '\\$1');
}

function textBlock(value: string, extra: Json = {}): Json {
  return { type: 'TextBlock', text: escapeCardText(value), wrap: true, ...extra };
}

function renderInput(input: Input): Json[] {
  const error = input.error ? [textBlock(input.error, { color: 'Attention', size: 'Small', spacing: 'None' })] : [];
  switch (input.kind) {
    case 'text':
      return [
        { type: 'Input.Text', id: input.id, label: input.label, isMultiline: input.multiline ?? false, isRequired: input.required ?? false, placeholder: input.placeholder, value: input.value, maxLength: input.maxLength, errorMessage: input.required ? `${input.label} is required` : undefined },
        ...error,
      ];
    case 'choice':
      return [
        {
          type: 'Input.ChoiceSet', id: input.id, label: input.label, isMultiSelect: input.multiple ?? false, isRequired: input.required ?? false, value: input.value,
          style: input.choices.length > 5 || input.multiple ? 'expanded' : 'compact',
          choices: input.choices.map((choice) => ({ title: choice.title, value: choice.value })),
          errorMessage: input.required ? `${input.label} is required` : undefined,
        },
        ...error,
      ];
    case 'toggle':
      return [{ type: 'Input.Toggle', id: input.id, title: input.label, value: input.value ? 'true' : 'false', valueOn: 'true', valueOff: 'false' }, ...error];
    case 'date':
      return [{ type: 'Input.Date', id: input.id, label: input.label, isRequired: input.required ?? false, value: input.value }, ...error];
  }
}

function renderBlock(block: Block): Json[] {
  switch (block.type) {
    case 'text':
      return [
        textBlock(block.text, {
          ...(block.style === 'heading' ? { weight: 'Bolder', spacing: 'Medium' } : {}),
          ...(block.style === 'muted' ? { isSubtle: true, size: 'Small' } : {}),
          ...(block.style === 'attention' ? { color: 'Attention' } : {}),
        }),
      ];
    case 'quote':
      return [
        {
          type: 'Container',
          style: 'emphasis',
          items: [textBlock(block.text), ...(block.source ? [textBlock(block.source, { isSubtle: true, size: 'Small' })] : [])],
        },
      ];
    case 'facts':
      return [{ type: 'FactSet', facts: block.facts.map((fact) => ({ title: escapeCardText(fact.title), value: escapeCardText(fact.value) })) }];
    case 'list':
      // One TextBlock; numbering is escaped so it reads "1." rather than starting Markdown's own list.
      return [{ type: 'TextBlock', wrap: true, text: block.items.map((item, i) => `${block.ordered ? `${i + 1}\\.` : '•'} ${escapeCardText(item)}`).join('\n\n') }];
    case 'input':
      return renderInput(block.input);
  }
}

function renderAction(action: Action): Json {
  if (action.type === 'openUrl') return { type: 'Action.OpenUrl', title: action.title, url: action.url };
  return { type: 'Action.Submit', title: action.title, data: action.data, ...(action.style ? { style: action.style } : {}) };
}

export function renderAdaptiveCard(card: Card): Json {
  const body: Json[] = [
    textBlock(card.title, { size: 'Medium', weight: 'Bolder', ...(card.tone === 'attention' ? { color: 'Attention' } : card.tone === 'good' ? { color: 'Good' } : {}) }),
    ...(card.subtitle ? [textBlock(card.subtitle, { isSubtle: true, spacing: 'None' })] : []),
    ...card.blocks.flatMap(renderBlock),
  ];
  return {
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: ADAPTIVE_CARD_VERSION,
    body,
    ...(card.actions?.length ? { actions: card.actions.map(renderAction) } : {}),
    msteams: { width: 'Full' },
  };
}
