/**
 * Slack interaction payloads → the core's submissions, and the core's replies → a modal's answer:
 * values in the Adaptive Card shape, malformed payloads refused whole, the same form with errors
 * mapped to per-field errors.
 */
import { describe, expect, it } from 'vitest';
import { renderModal } from '../../../src/adapters/slack/block-kit.ts';
import { answerForView, fromSlackText, normaliseViewState, parseButtonValue, parseMetadata, parseOpenFormValue, submissionFrom } from '../../../src/adapters/slack/interaction.ts';
import { card, text, type Card } from '../../../src/bot/reply.ts';
import { viewState } from '../../helpers/fake-slack.ts';

const form = (errors: Record<string, string> = {}, extra: Card['blocks'] = []): Card => ({
  kind: 'form.test',
  title: 'Test form',
  blocks: [
    { type: 'input', input: { kind: 'text', id: 'details', label: 'Details', required: true, error: errors.details } },
    { type: 'input', input: { kind: 'choice', id: 'areas', label: 'Areas', multiple: true, choices: [{ title: 'A', value: 'a' }, { title: 'B', value: 'b' }, { title: 'C', value: 'c' }], error: errors.areas } },
    { type: 'input', input: { kind: 'choice', id: 'one', label: 'One', choices: Array.from({ length: 8 }, (_, i) => ({ title: `O${i}`, value: `o${i}` })) } },
    { type: 'input', input: { kind: 'toggle', id: 'agree', label: 'Agree' } },
    { type: 'input', input: { kind: 'date', id: 'when', label: 'When' } },
    ...extra,
  ],
  actions: [{ type: 'submit', title: 'Send', data: { route: 'test.send', draftId: 'd1' } }],
});

describe('a modal\'s values', () => {
  const view = renderModal(form()) as unknown as Record<string, unknown>;

  it('come in the shape an Adaptive Card submit has: text, comma-joined choices, "true"/"false", YYYY-MM-DD', () => {
    const state = viewState(view, { details: 'What happened', areas: ['a', 'c'], one: 'o7', agree: true, when: '2026-11-24' });
    expect(normaliseViewState(state)).toEqual({ values: { details: 'What happened', areas: 'a,c', one: 'o7', agree: 'true', when: '2026-11-24' } });
  });

  it('come empty (and a toggle "false") when left blank', () => {
    expect(normaliseViewState(viewState(view, {}))).toEqual({ values: { details: '', areas: '', one: '', agree: 'false', when: '' } });
  });

  it.each([
    ['not an object', 'oops'],
    ['a block with two elements', { details: { a: { type: 'plain_text_input', value: 'x' }, b: { type: 'plain_text_input', value: 'y' } } }],
    ['an element this bot never renders', { details: { text: { type: 'rich_text_input' } } }],
    ['a non-text value', { details: { text: { type: 'plain_text_input', value: 42 } } }],
    ['options without values', { areas: { choices: { type: 'checkboxes', selected_options: [{ text: 'a' }] } } }],
    ['a date that is not one', { when: { date: { type: 'datepicker', selected_date: 'tomorrow' } } }],
  ])('are refused whole when malformed: %s', (_what, state) => {
    expect(normaliseViewState(state)).toEqual({ problem: expect.any(String) });
  });

  it('never override the submit action\'s data (a form cannot change its route)', () => {
    expect(submissionFrom({ route: 'test.send', draftId: 'd1' }, { route: 'admin.delete', draftId: 'other', details: 'x' })).toEqual({ route: 'test.send', draftId: 'd1', details: 'x' });
    expect(submissionFrom({ draftId: 'd1' }, { details: 'x' })).toBeUndefined();
  });
});

describe('button values and modal metadata', () => {
  it('read our JSON and refuse anything else', () => {
    expect(parseButtonValue('{"route":"qa.feedback","helpful":true}')).toEqual({ kind: 'data', data: { route: 'qa.feedback', helpful: true } });
    expect(parseButtonValue('{"form":"form-1","action":2}')).toEqual({ kind: 'stored', form: 'form-1', action: 2 });
    for (const bad of [undefined, 42, '', 'not json', '{"helpful":true}', '[1]', `{"route":"${'x'.repeat(2001)}"}`, '{"route":""}']) expect(parseButtonValue(bad)).toBeUndefined();
    expect(parseOpenFormValue('{"form":"form-1"}')).toBe('form-1');
    expect(parseOpenFormValue('{"form":"form-1","x":1}')).toBeUndefined();
    const metadata = { v: 1, kind: 'form.test', data: { route: 'test.send' }, conversation: { id: 'C1', kind: 'channel' } };
    expect(parseMetadata(JSON.stringify(metadata))).toEqual(metadata);
    for (const bad of ['', '{', '{"v":2,"kind":"k","data":{"route":"r"}}', '{"v":1,"kind":"k"}', '{"v":1,"kind":"k","form":"f"}', '{"v":1,"kind":"k","data":{"route":"r"},"conversation":{"id":"C","kind":"room"}}']) {
      expect(parseMetadata(bad)).toBeUndefined();
    }
  });
});

describe('answering a modal from the core\'s replies', () => {
  const shown = ['details', 'areas', 'one', 'agree', 'when'];

  it('maps the same form with errors to per-field errors, keyed by block id, keeping the other replies', () => {
    const replies = [text('Nearly there'), card(form({ details: 'Details: please answer this.', areas: 'Areas: choose from the list.' }))];
    expect(answerForView(replies, 'form.test', shown)).toEqual({
      kind: 'errors',
      errors: { details: 'Details: please answer this.', areas: 'Areas: choose from the list.' },
      rest: [text('Nearly there')],
    });
  });

  it('shows the form again (update) when its errors are on fields the open modal does not have', () => {
    const changed = form({ details: 'x' }, [{ type: 'input', input: { kind: 'text', id: 'extra', label: 'A new field', error: 'Needed now' } }]);
    expect(answerForView([card(changed)], 'form.test', shown)).toMatchObject({ kind: 'update', card: { kind: 'form.test' }, rest: [] });
  });

  it('closes for anything else: a text refusal, another card, the same form without errors', () => {
    for (const replies of [[text('Please type an answer before sending.')], [card({ kind: 'other', title: 't', blocks: [] })], [card(form())]]) {
      expect(answerForView(replies, 'form.test', shown)).toEqual({ kind: 'close', replies });
    }
    // A form of another kind with errors is not this form.
    const other = { ...form({ details: 'x' }), kind: 'form.other' };
    expect(answerForView([card(other)], 'form.test', shown).kind).toBe('close');
  });
});

describe('what someone typed', () => {
  it('reaches the core as plain text, without Slack\'s markup', () => {
    expect(fromSlackText('R&amp;D &lt;3 &gt; 2 &amp;amp;')).toBe('R&D <3 > 2 &amp;');
    expect(fromSlackText('ask <@U0123|sam> in <#C0456|staffroom> about <https://example.org/p?a=1&amp;b=2|the policy> or <https://example.org>')).toBe(
      'ask @sam in #staffroom about the policy or https://example.org',
    );
    expect(fromSlackText('<@U0123> <#C0456> <!here> <!channel> <!subteam^S1|@dsl-team> <mailto:a@b.c|a@b.c> <!date^1392734382^{date}|Feb 18>')).toBe('@U0123 #C0456 @here @channel @dsl-team a@b.c Feb 18');
  });
});
