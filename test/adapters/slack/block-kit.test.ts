/**
 * The Block Kit renderer: every card the bot sends (the shared catalogue in test/cards, built from
 * the real core and at its worst cases) renders as a message, and every form as a modal, that Slack
 * accepts (the fake Slack's limit checks); text can never ping, link or inject a Slack sequence;
 * limits are met by splitting, or by visible truncation with a note, never by a rejected message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACTION_IDS,
  FORM_CALLBACK_ID,
  LIMITS,
  SlackRenderError,
  clip,
  escapeMrkdwn,
  hasForm,
  inputsOf,
  noticeView,
  packMessages,
  renderCardMessage,
  renderHome,
  renderModal,
  renderTextMessage,
  splitText,
  type SlackBlock,
} from '../../../src/adapters/slack/block-kit.ts';
import { parseMetadata } from '../../../src/adapters/slack/interaction.ts';
import { escalationCard } from '../../../src/bot/features/qa.ts';
import { text, type Card, type Input } from '../../../src/bot/reply.ts';
import { catalogue, type CatalogueEntry } from '../../cards/catalogue.ts';
import { CardHarness } from '../../cards/harness.ts';
import { blockKitProblems, blocksText, viewProblems } from '../../helpers/fake-slack.ts';

/** Every mrkdwn text object in some blocks. */
function mrkdwnObjects(node: unknown, out: Array<{ text: string; verbatim?: boolean }> = []): Array<{ text: string; verbatim?: boolean }> {
  if (Array.isArray(node)) node.forEach((child) => mrkdwnObjects(child, out));
  else if (node && typeof node === 'object') {
    const n = node as Record<string, unknown>;
    if (n.type === 'mrkdwn' && typeof n.text === 'string') out.push(n as { text: string; verbatim?: boolean });
    else for (const value of Object.values(n)) mrkdwnObjects(value, out);
  }
  return out;
}

/** What Slack would act on in mrkdwn: a raw < or >, an & that is not one of our entities, a bare @channel. */
function unsafeMrkdwn(blocks: unknown): string[] {
  return mrkdwnObjects(blocks).flatMap(({ text: value, verbatim }) => {
    const problems: string[] = [];
    if (verbatim !== true) problems.push(`not verbatim: ${value.slice(0, 60)}`);
    // A quote's ">" at the start of a line is ours; anywhere else a raw > or any raw < is not.
    if (/</.test(value) || /[^\n]>/.test(value.replace(/^>/gm, ''))) problems.push(`raw angle bracket: ${value.slice(0, 80)}`);
    if (/&(?!amp;|lt;|gt;)/.test(value)) problems.push(`raw ampersand: ${value.slice(0, 80)}`);
    if (/@(channel|here|everyone)\b/i.test(value)) problems.push(`mention: ${value.slice(0, 80)}`);
    return problems;
  });
}

const hostile = 'Hi <!channel> and <!here|here> <@U0ADMIN> <#C0GENERAL> see <https://evil.example|our site> or <mailto:x@y.z|mail> &amp; @here @everyone @channel <!date^1392734382^{date}|x> *bold* > quote';

describe('escaping', () => {
  it('turns &, < and > into entities and breaks @channel/@here/@everyone, so nothing can ping or link', () => {
    const escaped = escapeMrkdwn(hostile);
    expect(escaped).not.toMatch(/[<>]/);
    expect(escaped).toContain('&lt;!channel&gt;');
    expect(escaped).toContain('&lt;@U0ADMIN&gt;');
    expect(escaped).toContain('&lt;https://evil.example|our site&gt;');
    expect(escaped).toContain('&amp;amp;');
    expect(escaped).not.toMatch(/@(channel|here|everyone)\b/);
    expect(escaped.replace(/\u2060/g, '')).toContain('@here @everyone @channel');
  });

  it('puts every piece of card text into verbatim mrkdwn, escaped, in every kind of block', () => {
    const card: Card = {
      kind: 'test.hostile',
      title: hostile,
      subtitle: hostile,
      blocks: [
        { type: 'text', text: hostile },
        { type: 'text', text: hostile, style: 'heading' },
        { type: 'text', text: hostile, style: 'muted' },
        { type: 'text', text: hostile, style: 'attention' },
        { type: 'quote', text: `${hostile}\n${hostile}`, source: hostile },
        { type: 'facts', facts: [{ title: hostile, value: hostile }] },
        { type: 'list', items: [hostile, hostile], ordered: true },
      ],
      actions: [{ type: 'submit', title: hostile, data: { route: 'x.y', note: hostile } }, { type: 'openUrl', title: 'Policy', url: 'javascript:alert(1)' }],
    };
    const message = renderCardMessage(card);
    expect(unsafeMrkdwn(message.blocks)).toEqual([]);
    expect(message.text).not.toMatch(/[<>]/);
    expect(blockKitProblems(message.blocks, 'message')).toEqual([]);
    // The javascript: link is not a button: it is shown as (escaped) text.
    const buttons = message.blocks.flatMap((b) => (b.type === 'actions' ? b.elements : []));
    expect(buttons.some((b) => 'url' in b && b.url)).toBe(false);
    expect(blocksText(message.blocks)).toContain('Policy: javascript:alert(1)');
    // The button's value is the submit data as JSON, untouched (it is never displayed).
    expect(JSON.parse((buttons[0] as { value: string }).value)).toEqual({ route: 'x.y', note: hostile });
  });

  it('escapes a plain text reply the same way', () => {
    const message = renderTextMessage(hostile);
    expect(unsafeMrkdwn(message.blocks)).toEqual([]);
    expect(message.text).not.toMatch(/[<>]/);
  });
});

describe('limits: split, or cut visibly with a note, never rejected', () => {
  it('splits a 20,000-character quote over sections of at most 3,000 characters, losing nothing', () => {
    const words = Array.from({ length: 4000 }, (_, i) => `word${i}`).join(' ');
    const message = renderCardMessage({ kind: 'qa.section', title: 'Long', blocks: [{ type: 'quote', text: words }] });
    const sections = message.blocks.filter((b) => b.type === 'section') as Array<Extract<SlackBlock, { type: 'section' }>>;
    expect(sections.length).toBeGreaterThan(6);
    for (const section of sections) expect(section.text!.text.length).toBeLessThanOrEqual(LIMITS.sectionText);
    const rejoined = sections.map((s) => s.text!.text.replace(/^>/gm, '')).join(' ').split(/\s+/);
    expect(rejoined).toEqual(words.split(' '));
    expect(blocksText(message.blocks)).not.toContain('Shortened');
  });

  it('never splits inside an entity or an emoji', () => {
    const value = escapeMrkdwn('<>&😀'.repeat(2000));
    for (const piece of splitText(value, 3000)) {
      expect(piece).not.toMatch(/&[a-z]{0,3}$/);
      const last = piece.charCodeAt(piece.length - 1);
      expect(last >= 0xd800 && last <= 0xdbff).toBe(false);
    }
    expect(clip(value, 10)).toMatch(/^(&lt;|&gt;|&amp;|😀)+…$/);
  });

  it('keeps at most 50 blocks, dropping body text from the end with a note and keeping the header and the buttons', () => {
    const card: Card = {
      kind: 'test.many',
      title: 'Many',
      blocks: Array.from({ length: 120 }, (_, i) => ({ type: 'text' as const, text: `Paragraph ${i}` })),
      actions: [{ type: 'submit', title: 'Helpful', data: { route: 'qa.feedback', helpful: true } }],
    };
    const { blocks } = renderCardMessage(card);
    expect(blocks).toHaveLength(LIMITS.messageBlocks);
    expect(blocks[0]!.type).toBe('header');
    expect(blocks.at(-1)!.type).toBe('actions');
    expect(blocksText(blocks)).toMatch(/Shortened to fit Slack: 73 more parts are not shown/);
    expect(blockKitProblems(blocks, 'message')).toEqual([]);
  });

  it('cuts a long title, button text and fact with "…" and says the card was shortened', () => {
    const card: Card = {
      kind: 'test.long',
      title: 'T'.repeat(400),
      blocks: [{ type: 'facts', facts: [{ title: 'Big', value: 'v'.repeat(5000) }] }],
      actions: [{ type: 'submit', title: 'B'.repeat(120), data: { route: 'a.b' } }],
    };
    const { blocks } = renderCardMessage(card);
    expect(blockKitProblems(blocks, 'message')).toEqual([]);
    const header = blocks[0] as Extract<SlackBlock, { type: 'header' }>;
    expect(header.text.text).toHaveLength(LIMITS.headerText);
    expect(header.text.text.endsWith('…')).toBe(true);
    const button = blocks.flatMap((b) => (b.type === 'actions' ? b.elements : []))[0] as { text: { text: string } };
    expect(button.text.text).toHaveLength(LIMITS.buttonText);
    expect(blocksText(blocks)).toContain('✂️ Shortened to fit Slack.');
  });

  it('puts submit data too long for a button (2,000 characters) behind the stored form, or says the button is unavailable', () => {
    const card: Card = { kind: 'test.big-data', title: 'Big data', blocks: [], actions: [{ type: 'submit', title: 'Go', data: { route: 'a.b', blob: 'x'.repeat(3000) } }] };
    const stored = renderCardMessage(card, { formId: 'form-1' });
    const [button] = stored.blocks.flatMap((b) => (b.type === 'actions' ? b.elements : [])) as Array<{ value: string; action_id: string }>;
    expect(JSON.parse(button!.value)).toEqual({ form: 'form-1', action: 0 });
    expect(button!.action_id).toBe(`${ACTION_IDS.submitPrefix}0`);
    const unstored = renderCardMessage(card);
    expect(unstored.blocks.some((b) => b.type === 'actions')).toBe(false);
    expect(blocksText(unstored.blocks)).toContain('"Go" is not available in Slack for this message.');
  });

  it('packs several replies into one message while they fit in 50 blocks', () => {
    const small = renderTextMessage('one');
    const big = renderCardMessage({ kind: 'k', title: 't', blocks: Array.from({ length: 47 }, (_, i) => ({ type: "text" as const, text: `p${i}` })) });
    const packed = packMessages([small, renderTextMessage('two'), big]);
    expect(packed).toHaveLength(2);
    expect(packed[0]!.blocks.map((b) => b.type)).toEqual(['section', 'divider', 'section']);
    for (const message of packed) expect(blockKitProblems(message.blocks, 'message')).toEqual([]);
  });
});

describe('forms as modals', () => {
  const escalation = escalationCard({ id: 'esc-1', questionId: 'q-1', question: 'When is the <!channel> party?', askedBy: 'U0TEACHER', askedAt: '2026-11-24T10:00:00.000Z', status: 'open' });

  it('shows a form in a message as its text and an "Open form" button, never as inputs', () => {
    expect(hasForm(escalation)).toBe(true);
    const { blocks } = renderCardMessage(escalation, { formId: 'form-9' });
    expect(blocks.some((b) => b.type === 'input')).toBe(false);
    const buttons = blocks.flatMap((b) => (b.type === 'actions' ? b.elements : [])) as Array<{ action_id: string; value: string; text: { text: string } }>;
    expect(buttons.map((b) => b.text.text)).toEqual(['Open form']);
    expect(buttons[0]).toMatchObject({ action_id: ACTION_IDS.openForm, value: JSON.stringify({ form: 'form-9' }) });
    expect(blocksText(blocks)).toContain('When is the &lt;!channel&gt; party?');
  });

  it('renders the escalation form as a modal: one input block per input (block_id = id), the submit data in private_metadata', () => {
    const view = renderModal(escalation, { form: 'form-9', conversation: { id: 'D0COORD', kind: 'personal' } });
    expect(viewProblems(view)).toEqual([]);
    expect(view.callback_id).toBe(FORM_CALLBACK_ID);
    expect(view.submit?.text).toBe('Send answer');
    const inputs = view.blocks.filter((b) => b.type === 'input') as Array<Extract<SlackBlock, { type: 'input' }>>;
    expect(inputs.map((b) => [b.block_id, b.element.type, b.optional])).toEqual([
      ['answer', 'plain_text_input', false],
      ['save', 'checkboxes', true],
    ]);
    // 4,000 characters allowed on Teams; Slack's text input holds at most 3,000.
    expect(inputs[0]!.element).toMatchObject({ multiline: true, max_length: 3000 });
    // The toggle starts on, as on Teams.
    expect(inputs[1]!.element).toMatchObject({ initial_options: [{ value: 'true' }] });
    expect(parseMetadata(view.private_metadata)).toEqual({
      v: 1,
      kind: 'qa.escalation',
      data: { route: 'qa.reply', escalationId: 'esc-1' },
      form: 'form-9',
      conversation: { id: 'D0COORD', kind: 'personal' },
    });
  });

  it('renders every input kind with its initial value and error, and picks the element by the number of choices', () => {
    const choices = (n: number) => Array.from({ length: n }, (_, i) => ({ title: `Choice ${i}`, value: `c${i}` }));
    const inputs: Input[] = [
      { kind: 'text', id: 'name', label: 'Name', value: 'Sam', placeholder: 'P'.repeat(400), error: 'Too <b>short</b>' },
      { kind: 'choice', id: 'few', label: 'Few', choices: choices(3), value: 'c1', required: true },
      { kind: 'choice', id: 'many', label: 'Many', choices: choices(12), value: 'c11' },
      { kind: 'choice', id: 'multi', label: 'Multi', choices: choices(4), multiple: true, value: 'c0,c3' },
      { kind: 'choice', id: 'multimany', label: 'Multi many', choices: choices(30), multiple: true, value: 'c29' },
      { kind: 'choice', id: 'huge', label: 'Huge', choices: choices(250), multiple: true, value: 'c200,c1' },
      { kind: 'toggle', id: 'agree', label: 'Agree', value: false },
      { kind: 'date', id: 'when', label: 'When', value: '2026-11-24', required: true },
    ];
    const card: Card = { kind: 'form.test', title: 'A form with a title longer than twenty-four', blocks: inputs.map((input) => ({ type: 'input' as const, input })), actions: [{ type: 'submit', title: 'Send', data: { route: 'test.send' } }, { type: 'submit', title: 'Cancel', style: 'destructive', data: { route: 'test.cancel' } }] };
    const view = renderModal(card);
    expect(viewProblems(view)).toEqual([]);
    const elements = Object.fromEntries((view.blocks.filter((b) => b.type === 'input') as Array<Extract<SlackBlock, { type: 'input' }>>).map((b) => [b.block_id, b.element as Record<string, any>]));
    expect(Object.fromEntries(Object.entries(elements).map(([id, e]) => [id, (e as Record<string, any>).type]))).toEqual({
      name: 'plain_text_input',
      few: 'radio_buttons',
      many: 'static_select',
      multi: 'checkboxes',
      multimany: 'multi_static_select',
      huge: 'multi_static_select',
      agree: 'checkboxes',
      when: 'datepicker',
    });
    expect(elements.name!.initial_value).toBe('Sam');
    expect(elements.few!.initial_option.value).toBe('c1');
    expect(elements.many!.initial_option.value).toBe('c11');
    expect(elements.multi!.initial_options.map((o: any) => o.value)).toEqual(['c0', 'c3']);
    expect(elements.huge!.option_groups).toHaveLength(3);
    expect(elements.huge!.initial_options.map((o: any) => o.value)).toEqual(['c1', 'c200']);
    expect(elements.agree!.initial_options).toBeUndefined();
    expect(elements.when!.initial_date).toBe('2026-11-24');
    // The error shows under its field (escaped); the long title is shown in full as a header.
    expect(blocksText(view.blocks)).toContain('⚠️ Too &lt;b&gt;short&lt;/b&gt;');
    expect(view.title.text).toBe('A form with a title lon…');
    expect(view.blocks[0]).toMatchObject({ type: 'header', text: { text: 'A form with a title longer than twenty-four' } });
    // The other submit is a button inside the modal, with its data.
    const cancel = (view.blocks as SlackBlock[]).flatMap((b) => (b.type === 'actions' ? b.elements : []))[0] as { value: string; style: string };
    expect(JSON.parse(cancel.value)).toEqual({ route: 'test.cancel' });
    expect(cancel.style).toBe('danger');
  });

  it('refuses a form Slack cannot show (a choice value over 150 characters, two inputs with one id) rather than sending a broken modal', () => {
    const long: Card = { kind: 'f', title: 'f', blocks: [{ type: 'input', input: { kind: 'choice', id: 'c', label: 'c', choices: [{ title: 'x', value: 'v'.repeat(151) }] } }], actions: [{ type: 'submit', title: 'Send', data: { route: 'a.b' } }] };
    expect(() => renderModal(long)).toThrow(SlackRenderError);
    const twice: Card = { kind: 'f', title: 'f', blocks: [{ type: 'input', input: { kind: 'text', id: 'a', label: 'a' } }, { type: 'input', input: { kind: 'text', id: 'a', label: 'b' } }], actions: [{ type: 'submit', title: 'Send', data: { route: 'a.b' } }] };
    expect(() => renderModal(twice)).toThrow(/two inputs have the id "a"/);
  });

  it('keeps submit data too long for private_metadata in the stored form, and refuses without one', () => {
    const card: Card = { kind: 'f', title: 'f', blocks: [{ type: 'input', input: { kind: 'text', id: 'a', label: 'a' } }], actions: [{ type: 'submit', title: 'Send', data: { route: 'a.b', blob: 'x'.repeat(3000) } }] };
    expect(() => renderModal(card)).toThrow(/too long/);
    const view = renderModal(card, { form: 'form-7' });
    expect(parseMetadata(view.private_metadata)).toEqual({ v: 1, kind: 'f', form: 'form-7', action: 0 });
  });

  it('builds notice modals and the Home tab within limits', () => {
    expect(viewProblems(noticeView('A title that is far too long for Slack', [text(hostile)]))).toEqual([]);
    const home = renderHome({ sections: [escalation], help: [text('Ask me anything.')] });
    expect(viewProblems(home)).toEqual([]);
    expect(unsafeMrkdwn(home.blocks.filter((b) => b.type !== 'section' || !('text' in b) || !b.text?.text.includes('`/aup')))).toEqual([]);
    expect(blocksText(home.blocks)).toContain('/report-incident');
  });
});

describe('every card the bot sends (the shared catalogue)', () => {
  let harness: CardHarness;
  const built = new Map<CatalogueEntry, Card>();

  beforeAll(async () => {
    harness = await CardHarness.start();
    for (const entry of catalogue) {
      try {
        built.set(entry, await entry.build(harness));
      } catch {
        // test/cards/cards.test.ts reports a card that cannot be built.
      }
    }
  }, 120_000);
  afterAll(async () => {
    await harness?.close();
  });

  it('built cards to check', () => {
    expect(built.size).toBeGreaterThan(20);
  });

  it.each(catalogue.map((entry) => [entry.name, entry] as const))('%s: a message Slack accepts, with safe text', (_name, entry) => {
    const card = built.get(entry);
    if (!card) return;
    const message = renderCardMessage(card, { formId: 'form-00000000-0000-0000-0000-000000000000' });
    expect(blockKitProblems(message.blocks, 'message')).toEqual([]);
    expect(unsafeMrkdwn(message.blocks)).toEqual([]);
    expect(message.text.length).toBeLessThanOrEqual(LIMITS.fallbackText);
    if (hasForm(card)) {
      const view = renderModal(card, { form: 'form-00000000-0000-0000-0000-000000000000', conversation: { id: 'D0TEST', kind: 'personal' } });
      expect(viewProblems(view)).toEqual([]);
      expect(unsafeMrkdwn(view.blocks)).toEqual([]);
      const blockIds = view.blocks.flatMap((b) => (b.type === 'input' ? [b.block_id] : []));
      expect(blockIds).toEqual(inputsOf(card).map((input) => input.id));
      expect(parseMetadata(view.private_metadata)?.kind).toBe(card.kind);
    }
  });
});
