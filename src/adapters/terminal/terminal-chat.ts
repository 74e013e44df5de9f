/**
 * `esafety-bot chat`: the same core in a terminal. Cards degrade to numbered choices; a card with
 * form inputs is filled in by prompts, one input at a time, then submitted like a card would be.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import type { Bot } from '../../bot/bot.ts';
import type { Inbound } from '../../bot/inbound.ts';
import type { Action, Input } from '../../bot/reply.ts';
import { renderReplyAsText } from './render.ts';

export interface TerminalChatOptions {
  bot: Bot;
  user: string;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

export async function runTerminalChat(options: TerminalChatOptions): Promise<void> {
  const { bot, user, output } = options;
  const rl = createInterface({ input: options.input, output, terminal: false });
  const conversationId = `terminal-${user}`;
  let actions: Action[] = [];
  let inputs: Input[] = [];
  const write = (line: string) => output.write(`${line}\n`);
  const base = (): Omit<Inbound, 'text' | 'submission'> => ({
    platform: 'terminal',
    user: { id: user, name: user },
    conversation: { id: conversationId, kind: 'personal' },
    reference: { conversationId, user },
    correlationId: randomUUID(),
  });

  const show = async (inbound: Inbound) => {
    const replies = await bot.handle(inbound);
    actions = [];
    inputs = [];
    for (const reply of replies) {
      const rendered = renderReplyAsText(reply);
      write(rendered.text);
      write('');
      if (rendered.actions.length) {
        actions = rendered.actions;
        inputs = rendered.inputs;
      }
    }
  };

  // One iterator for the whole session: prompts inside a form read from the same stream of lines.
  const lines = rl[Symbol.asyncIterator]();
  const readLine = async (): Promise<string | undefined> => {
    const next = await lines.next();
    return next.done ? undefined : next.value;
  };
  const ask = async (question: string): Promise<string | undefined> => {
    output.write(question);
    return readLine();
  };

  const fill = async (): Promise<Record<string, unknown> | undefined> => {
    const values: Record<string, unknown> = {};
    for (const input of inputs) {
      if (input.kind === 'choice') {
        write(`${input.label}:`);
        input.choices.forEach((choice, i) => write(`  ${i + 1}. ${choice.title}`));
        const answer = await ask(input.multiple ? 'numbers, separated by commas> ' : 'number> ');
        if (answer === undefined) return undefined;
        const picked = answer.split(',').map((n) => input.choices[Number(n.trim()) - 1]?.value).filter(Boolean);
        values[input.id] = input.multiple ? picked.join(',') : picked[0];
      } else if (input.kind === 'toggle') {
        const answer = await ask(`${input.label} (y/n)> `);
        if (answer === undefined) return undefined;
        values[input.id] = /^y/i.test(answer.trim()) ? 'true' : 'false';
      } else {
        const answer = await ask(`${input.label}> `);
        if (answer === undefined) return undefined;
        values[input.id] = answer;
      }
    }
    return values;
  };

  write(`esafety-bot terminal chat as "${user}". Type a question, "help", or a number to press a button. Ctrl-D to leave.`);
  output.write('> ');
  for (let line = await readLine(); line !== undefined; line = await readLine()) {
    const trimmed = line.trim();
    const choice = /^\d+$/.test(trimmed) ? actions[Number(trimmed) - 1] : undefined;
    if (choice?.type === 'submit') {
      const values = inputs.length ? await fill() : {};
      if (values === undefined) break;
      await show({ ...base(), submission: { ...values, ...choice.data } });
    } else if (choice?.type === 'openUrl') {
      write(`Open ${choice.url} in your browser.`);
    } else if (/^\d+$/.test(trimmed) && actions.length > 0) {
      write(`There is no option ${trimmed}: choose 1 to ${actions.length}, or type a question.`);
    } else if (trimmed) {
      await show({ ...base(), text: trimmed });
    }
    output.write('> ');
  }
  rl.close();
}
