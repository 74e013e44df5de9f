/**
 * Policy and user text rendered safely: Adaptive Cards (what Teams shows) carry it escaped, so no
 * Markdown link, emphasis or mention becomes live, and the cards parse cleanly in the official
 * adaptivecards library; the terminal never receives control sequences.
 */
import AC from 'adaptivecards/dist/adaptivecards.js';
import { describe, expect, it } from 'vitest';
import { escapeCardText, renderAdaptiveCard } from '../../src/adapters/teams/adaptive-card.ts';
import { renderCardAsText, renderReplyAsText, safeTerminalText } from '../../src/adapters/terminal/render.ts';
import { answerCard, escalationCard } from '../../src/bot/features/qa.ts';
import { text as textReply, type Card } from '../../src/bot/reply.ts';
import type { IndexedSection } from '../../src/policies/search.ts';

const hostile = [
  'See [the policy](https://evil.example/phish) now',
  '<script>alert(document.cookie)</script>',
  '[x](javascript:alert(1))',
  '**bold** and _italic_ and `code`',
  '<at>Everyone</at> please read',
  '![img](https://evil.example/pixel.png)',
  '# not a heading',
  '1. not a list',
  '- not a bullet',
  '> not a quote',
  '| not | a table |',
  '~~struck~~ {{template}} back\\slash',
].join('\n');

type Json = Record<string, any>;

/** Every TextBlock and FactSet string in a rendered card, as sent (escaped). */
function cardStrings(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((child) => cardStrings(child, out));
  else if (node && typeof node === 'object') {
    const element = node as Json;
    if (element.type === 'TextBlock') out.push(element.text);
    if (element.type === 'FactSet') for (const fact of element.facts) out.push(fact.title, fact.value);
    Object.values(element).forEach((child) => cardStrings(child, out));
  }
  return out;
}

const unescape = (value: string) => value.replace(/\\([\s\S])/g, '$1');
/** What is left of a string once every backslash-escaped character is taken out: Markdown could only act on this. */
const unescapedRest = (value: string) => value.replace(/\\[\s\S]/g, '');
const markdownSyntax = /[\\`*_{}[\]()#+\-.!<>|~]/;

/** Parses the card JSON with the official library and returns what it reported. */
function parseWithAdaptiveCards(json: Json): { events: string[]; validation: string[]; roundTrip: Json } {
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext();
  card.parse(json, context);
  const events: string[] = [];
  for (let i = 0; i < context.eventCount; i++) {
    const event = context.getEventAt(i);
    events.push(`${AC.ValidationEvent[event.event]}: ${event.message}`);
  }
  const validation = card.validateProperties().validationEvents.map((event) => `${AC.ValidationEvent[event.event]}: ${event.message}`);
  return { events, validation, roundTrip: card.toJSON() as Json };
}

const section = (overrides: Partial<IndexedSection> = {}): IndexedSection => ({
  id: 'staff-acceptable-use#links-and-attachments',
  docId: 'staff-acceptable-use',
  docTitle: 'Staff **Acceptable** Use <b>Policy</b>',
  heading: 'Links [click](javascript:alert(1)) & <script>',
  parentHeading: 'Email <at>Head</at>',
  text: hostile,
  version: '2026.1',
  ...overrides,
});

const everyBlockCard: Card = {
  kind: 'test.everything',
  title: `Title ${hostile}`,
  subtitle: 'Subtitle [link](https://evil.example) **bold**',
  tone: 'attention',
  blocks: [
    { type: 'text', text: hostile },
    { type: 'text', style: 'heading', text: '## heading <script>' },
    { type: 'text', style: 'muted', text: '_muted_ [m](javascript:void(0))' },
    { type: 'text', style: 'attention', text: '<at>DSL</at> **now**' },
    { type: 'quote', text: hostile, source: 'Source [s](https://evil.example) v1.0' },
    { type: 'facts', facts: [{ title: '**Owner**', value: '[dsl](javascript:alert(1))' }, { title: 'Review', value: '2027-01-15' }] },
    { type: 'list', items: ['[a](https://evil.example)', '<script>x</script>', '**b**'] },
    { type: 'list', ordered: true, items: ['first', '2. second'] },
    { type: 'input', input: { kind: 'text', id: 'answer', label: 'Your answer', multiline: true, required: true, maxLength: 4000 } },
    { type: 'input', input: { kind: 'toggle', id: 'save', label: 'Save it', value: true } },
    { type: 'input', input: { kind: 'choice', id: 'pick', label: 'Pick', choices: [{ title: 'One', value: '1' }, { title: 'Two', value: '2' }], required: true } },
    { type: 'input', input: { kind: 'date', id: 'when', label: 'When' } },
  ],
  actions: [
    { type: 'submit', title: 'Send', style: 'positive', data: { route: 'qa.reply', escalationId: 'esc-1' } },
    { type: 'openUrl', title: 'Open', url: 'https://example.org/policies' },
  ],
};

describe('escapeCardText', () => {
  it('backslash-escapes every character Adaptive Card Markdown acts on, and nothing is lost', () => {
    const escaped = escapeCardText(hostile);
    expect(unescapedRest(escaped)).not.toMatch(markdownSyntax);
    expect(unescape(escaped)).toBe(hostile);
  });

  it('leaves ordinary words alone', () => {
    expect(escapeCardText('Phones stay in bags during lessons')).toBe('Phones stay in bags during lessons');
  });
});

describe('Adaptive Cards carry policy and user text escaped, and parse cleanly', () => {
  const cases: Array<[string, Card]> = [
    ['a card using every block type', everyBlockCard],
    ['an answer quoting a hostile policy section', answerCard(section(), 'q-1')],
    ['a coordinator answer quoting hostile text', answerCard(section({ id: 'coordinator-answers#esc-1', docId: 'coordinator-answers', heading: hostile }), 'q-2', { answeredAt: '2026-11-20T10:00:00.000Z' })],
    ['an escalation of a hostile question', escalationCard({ id: 'esc-1', questionId: 'q-1', question: hostile, askedBy: 'teacher-1', askedAt: '2026-11-20T10:00:00.000Z', status: 'open' }, '<at>Teacher</at> **One**')],
  ];

  it.each(cases)('%s: no TextBlock or fact holds active Markdown, and unescaped it reads as written', (_name, card) => {
    const json = renderAdaptiveCard(card);
    const strings = cardStrings(json);
    expect(strings.length).toBeGreaterThan(0);
    for (const value of strings) expect(unescapedRest(value), value).not.toMatch(markdownSyntax);
    const shown = strings.map(unescape).join('\n');
    expect(shown).toContain('<script>alert(document.cookie)</script>');
    expect(shown).toContain('[x](javascript:alert(1))');
  });

  it.each(cases)('%s: the adaptivecards library parses it with no errors or warnings and validates it', (_name, card) => {
    const json = renderAdaptiveCard(card);
    const { events, validation, roundTrip } = parseWithAdaptiveCards(json);
    expect(events).toEqual([]);
    expect(validation).toEqual([]);
    // The library kept the text as sent: nothing was dropped as invalid.
    expect(cardStrings(roundTrip).sort()).toEqual(cardStrings(json).sort());
  });

  it('is a version 1.5 card (what Teams renders) with its Action.Submit data intact', () => {
    const json = renderAdaptiveCard(escalationCard({ id: 'esc-9', questionId: 'q-9', question: 'q', askedBy: 't', askedAt: '2026-11-20T10:00:00.000Z', status: 'open' }));
    expect(json).toMatchObject({ type: 'AdaptiveCard', version: '1.5' });
    expect(json.actions).toEqual([{ type: 'Action.Submit', title: 'Send answer', style: 'positive', data: { route: 'qa.reply', escalationId: 'esc-9' } }]);
    const inputs = (json.body as Json[]).filter((element) => String(element.type).startsWith('Input.'));
    expect(inputs.map((input) => [input.type, input.id])).toEqual([['Input.Text', 'answer'], ['Input.Toggle', 'save']]);
  });

  it('catches a broken card: the harness is not vacuous', () => {
    const { events, validation } = parseWithAdaptiveCards({
      type: 'AdaptiveCard',
      version: '1.5',
      body: [{ type: 'NoSuchElement' }, { type: 'Input.Text', id: 'dup' }, { type: 'Input.Text', id: 'dup' }],
    });
    expect(events.join('\n')).toMatch(/UnknownElementType/);
    expect(validation.join('\n')).toMatch(/DuplicateId/);
  });
});

describe('terminal rendering', () => {
  const nasty = [
    'red \u001b[31mALERT\u001b[0m text',
    'clear \u001b[2J\u001b[H screen',
    'title \u001b]0;pwned\u0007 set',
    'eight-bit \u009b2J csi',
    'bell \u0007 backspace \b carriage\roverwrite nul \u0000 del \u007f',
  ].join('\n');
  const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

  it('strips ANSI escape sequences and control characters, keeping the words, newlines and tabs', () => {
    const safe = safeTerminalText(`${nasty}\tend`);
    expect(safe).not.toMatch(controls);
    expect(safe).toContain('red ALERT text');
    expect(safe).toContain('clear  screen');
    expect(safe).toContain('\tend');
    expect(safe.split('\n')).toHaveLength(5);
  });

  it('makes every line of a rendered card safe: title, blocks, sources, facts, list items and buttons', () => {
    const card: Card = {
      kind: 'test.terminal',
      title: `T ${nasty}`,
      subtitle: nasty,
      blocks: [
        { type: 'text', text: nasty },
        { type: 'text', style: 'heading', text: nasty },
        { type: 'quote', text: nasty, source: nasty },
        { type: 'facts', facts: [{ title: nasty, value: nasty }] },
        { type: 'list', items: [nasty], ordered: true },
      ],
      actions: [
        { type: 'submit', title: `Go \u001b[5mnow\u001b[0m`, data: { route: 'x.y', keep: '\u001b[31m' } },
        { type: 'openUrl', title: 'Open', url: 'https://example.org/\u001b[2Jpolicy' },
      ],
    };
    const rendered = renderCardAsText(card);
    expect(rendered.text).not.toMatch(controls);
    expect(rendered.text).toContain('[1] Go now');
    expect(rendered.text).toContain('(https://example.org/policy)');
    expect(rendered.actions[0]!.title).toBe('Go now');
    // Button data goes back to the bot, never to the screen: it is passed on untouched.
    expect(rendered.actions[0]).toMatchObject({ type: 'submit', data: { route: 'x.y', keep: '\u001b[31m' } });
    expect(rendered.actions[1]).toMatchObject({ type: 'openUrl', url: 'https://example.org/policy' });
  });

  it('makes the prompts of form inputs safe too (the terminal chat prints labels and choices)', () => {
    const rendered = renderCardAsText({
      kind: 'test.form',
      title: 'Form',
      blocks: [
        { type: 'input', input: { kind: 'text', id: 'a', label: 'Name \u001b[8mhidden' } },
        { type: 'input', input: { kind: 'choice', id: 'b', label: 'Pick\u0007', choices: [{ title: '\u001b[31mRed', value: '\u001b[31m' }] } },
      ],
      actions: [{ type: 'submit', title: 'Send', data: { route: 'x.y' } }],
    });
    expect(rendered.inputs.map((input) => input.label)).toEqual(['Name hidden', 'Pick']);
    const choice = rendered.inputs[1]!;
    expect(choice.kind === 'choice' && choice.choices[0]).toEqual({ title: 'Red', value: '\u001b[31m' });
  });

  it('keeps Markdown and markup as plain visible text (a terminal does not render it)', () => {
    const rendered = renderReplyAsText(textReply(`${hostile}\u001b[31m`));
    expect(rendered.text).toBe(hostile);
  });

  it('quotes policy text line by line under a bar, cited once in the subtitle', () => {
    const rendered = renderCardAsText(answerCard(section({ text: 'line one\nline two', heading: 'Plain', docTitle: 'Doc', parentHeading: undefined }), 'q-1'));
    expect(rendered.text).toContain('  │ line one\n  │ line two');
    expect(rendered.text).toContain('\nDoc · Plain · version 2026.1\n');
    expect(rendered.text.match(/version 2026\.1/g)).toHaveLength(1);
  });
});
