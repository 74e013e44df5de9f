/**
 * Cards as plain numbered text, for the terminal chat (and any surface that only shows text).
 * Buttons become numbered choices; form inputs become prompts, asked one at a time.
 */
import type { Action, Block, Card, Input, Reply } from '../../bot/reply.ts';

/**
 * Strips control characters so policy or user text cannot move the cursor or recolour the terminal:
 * ANSI CSI sequences whole, then every other C0 and C1 control (U+009B is a one-character CSI on
 * some terminals). Newlines and tabs stay.
 */
export function safeTerminalText(value: string): string {
  return value.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '');
}

/** Inputs and actions with the text the terminal chat prints (labels, titles, URLs) made safe; values untouched. */
function safeInput(input: Input): Input {
  const label = safeTerminalText(input.label);
  return input.kind === 'choice' ? { ...input, label, choices: input.choices.map((choice) => ({ ...choice, title: safeTerminalText(choice.title) })) } : { ...input, label };
}

function safeAction(action: Action): Action {
  return action.type === 'openUrl' ? { ...action, title: safeTerminalText(action.title), url: safeTerminalText(action.url) } : { ...action, title: safeTerminalText(action.title) };
}

function renderBlock(block: Block): string[] {
  switch (block.type) {
    case 'text':
      return [block.style === 'heading' ? `\n${block.text.toUpperCase()}` : block.text];
    case 'quote':
      return [...block.text.split('\n').map((line) => `  │ ${line}`), ...(block.source ? [`  — ${block.source}`] : [])];
    case 'facts':
      return block.facts.map((fact) => `  ${fact.title}: ${fact.value}`);
    case 'list':
      return block.items.map((item, i) => `  ${block.ordered ? `${i + 1}.` : '•'} ${item}`);
    case 'input':
      return [];
  }
}

export interface RenderedCard {
  text: string;
  /** Numbered actions, 1-based in the text. */
  actions: Action[];
  inputs: Input[];
}

export function renderCardAsText(card: Card): RenderedCard {
  const lines = [`== ${card.title} ==`, ...(card.subtitle ? [card.subtitle] : []), ...card.blocks.flatMap(renderBlock)];
  const inputs = card.blocks.flatMap((block) => (block.type === 'input' ? [safeInput(block.input)] : []));
  const actions = (card.actions ?? []).map(safeAction);
  if (actions.length) lines.push('', ...actions.map((action, i) => `  [${i + 1}] ${action.title}${action.type === 'openUrl' ? ` (${action.url})` : ''}`));
  return { text: safeTerminalText(lines.join('\n')), actions, inputs };
}

export function renderReplyAsText(reply: Reply): RenderedCard {
  return reply.type === 'text' ? { text: safeTerminalText(reply.text), actions: [], inputs: [] } : renderCardAsText(reply.card);
}
