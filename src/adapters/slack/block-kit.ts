/**
 * Renders neutral Cards as Block Kit: messages (50 blocks), modals and the App Home tab (100).
 *
 * Text safety: every piece of policy or user text goes into `mrkdwn` objects escaped (&, <, >), with
 * `verbatim: true` (Slack then neither auto-links URLs and channel names nor parses mentions), and
 * with @channel / @here / @everyone broken by a word joiner. So no text can ping anyone, link
 * anywhere or post a special sequence (<!channel>, <@U…>, <http://…|…>, <!date…>). Plain-text
 * objects (headers, buttons, labels, options) are never parsed by Slack.
 *
 * Limits: Slack refuses a whole message when one limit is exceeded, so nothing here ever exceeds
 * one. Long text is split over several sections; what still does not fit is cut with "…" and a
 * visible note says the card was shortened.
 *
 * Forms: a card with inputs becomes a modal (block_id = input id, the submit action's data in
 * private_metadata). In a message it shows its text and an "Open form" button instead.
 */
import type { types } from '@slack/bolt';
import type { Action, Block, Card, Input, Reply } from '../../bot/reply.ts';

export type SlackBlock = types.KnownBlock;
export type ModalView = types.ModalView;
export type HomeView = types.HomeView;

/** Block Kit limits (https://docs.slack.dev/reference/block-kit). */
export const LIMITS = {
  messageBlocks: 50,
  viewBlocks: 100,
  sectionText: 3000,
  fieldText: 2000,
  fieldsPerSection: 10,
  contextText: 2000,
  headerText: 150,
  buttonText: 75,
  buttonValue: 2000,
  url: 3000,
  actionsPerBlock: 25,
  modalTitle: 24,
  modalButton: 24,
  privateMetadata: 3000,
  inputLabel: 2000,
  placeholder: 150,
  optionText: 75,
  optionValue: 150,
  selectOptions: 100,
  optionGroups: 100,
  checkboxOptions: 10,
  radioOptions: 10,
  textInputLength: 3000,
  blockId: 255,
  actionId: 255,
  /** The top-level `text` of a message (notifications, screen readers); Slack allows more, but a notification needs no more. */
  fallbackText: 3000,
} as const;

export const ACTION_IDS = {
  /** `esafety.submit.<index>`: a submit action; its value is the JSON of the action's data. */
  submitPrefix: 'esafety.submit.',
  /** `esafety.url.<index>`: a link button (Slack still sends block_actions for it; only acknowledged). */
  urlPrefix: 'esafety.url.',
  /** Opens a stored form card as a modal; value `{"form": "<id>"}`. */
  openForm: 'esafety.form.open',
  /** App Home shortcut: starts an incident report. */
  homeReport: 'esafety.home.report',
} as const;

/** callback_id of every modal made from a card. */
export const FORM_CALLBACK_ID = 'esafety.form';
/** callback_id of the small informational modals (a refusal, "done"). */
export const NOTICE_CALLBACK_ID = 'esafety.notice';

/** action_id of each input kind's element, so a submitted value can be normalised by kind. */
export const INPUT_ACTION_IDS = { text: 'text', choice: 'choice', choices: 'choices', toggle: 'toggle', date: 'date' } as const;

export class SlackRenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SlackRenderError';
  }
}

// ---------------------------------------------------------------------------------------------
// Text

/** Control characters (but newline and tab) are dropped: they mean nothing in Slack and can confuse clients. */
const stripControls = (value: string): string => value.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '');

/**
 * Escapes text for a mrkdwn object: &, < and > as entities (so no <!channel>, <@U…> or <url|text>
 * can be formed), and a word joiner after the @ of @channel, @here and @everyone.
 */
export function escapeMrkdwn(value: string): string {
  return stripControls(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/@(channel|here|everyone)\b/gi, '@\u2060$1');
}

/** Text for a plain_text object: never parsed by Slack; only control characters removed. */
export function plainText(value: string): string {
  return stripControls(value);
}

const ELLIPSIS = '…';

/** Where a cut at `at` is safe: not inside an entity (&amp;) or between the halves of a surrogate pair. */
function safeCut(value: string, at: number): number {
  let cut = Math.max(0, Math.min(at, value.length));
  const amp = value.lastIndexOf('&', cut - 1);
  if (amp >= 0 && cut - amp < 6 && value.indexOf(';', amp) >= cut) cut = amp;
  const code = value.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
  return cut;
}

/** Shortens (already escaped, or plain) text to `limit` characters, ending in "…" when cut. */
export function clip(value: string, limit: number): string {
  if (value.length <= limit) return value;
  const cut = safeCut(value, limit - ELLIPSIS.length);
  return `${value.slice(0, cut).replace(/\s+$/, '')}${ELLIPSIS}`;
}

/**
 * Splits escaped text into pieces of at most `limit` characters, at a blank line, a line break or
 * a space where it can (never inside an entity or a surrogate pair).
 */
export function splitText(value: string, limit: number): string[] {
  const pieces: string[] = [];
  let rest = value;
  while (rest.length > limit) {
    const window = rest.slice(0, limit + 1);
    let at = window.lastIndexOf('\n\n');
    if (at < limit / 2) at = window.lastIndexOf('\n');
    if (at < limit / 2) at = window.lastIndexOf(' ');
    if (at < limit / 2) at = safeCut(rest, limit);
    if (at <= 0) at = limit;
    pieces.push(rest.slice(0, at).replace(/\s+$/, ''));
    rest = rest.slice(at).replace(/^\s+/, '');
  }
  if (rest.trim()) pieces.push(rest);
  return pieces.filter((piece) => piece.trim() !== '');
}

const mrkdwn = (text: string): types.MrkdwnElement => ({ type: 'mrkdwn', text, verbatim: true });
const plain = (text: string, limit: number): types.PlainTextElement => ({ type: 'plain_text', text: clip(plainText(text).trim() || '-', limit), emoji: true });

// ---------------------------------------------------------------------------------------------
// Blocks

/** A rendered block, and whether it must survive when blocks have to be dropped (headers, buttons, inputs). */
interface Piece {
  block: SlackBlock;
  keep?: boolean;
}

interface RenderState {
  /** Something was cut or left out: the card gets a visible note. */
  shortened: boolean;
}

function sections(escaped: string, state: RenderState, transform: (piece: string) => string = (piece) => piece): Piece[] {
  // The transform (a quote's ">" on every line) lengthens a piece: split again until it fits.
  const fit = (piece: string): string[] => {
    const shown = transform(piece);
    if (shown.length <= LIMITS.sectionText) return [shown];
    if (piece.length < 200) {
      state.shortened = true;
      return [clip(shown, LIMITS.sectionText)];
    }
    return splitText(piece, Math.floor(piece.length / 2) + 1).flatMap(fit);
  };
  return splitText(escaped, LIMITS.sectionText).flatMap(fit).map((text) => ({ block: { type: 'section', text: mrkdwn(text) } }));
}

function context(escaped: string): SlackBlock {
  return { type: 'context', elements: [mrkdwn(clip(escaped, LIMITS.contextText))] };
}

function renderTextBlock(block: Extract<Block, { type: 'text' }>, state: RenderState): Piece[] {
  const escaped = escapeMrkdwn(block.text).trim();
  if (!escaped) return [];
  switch (block.style) {
    case 'heading':
      return sections(escaped, state, (piece) => `*${piece}*`);
    case 'muted':
      return escaped.length <= LIMITS.contextText ? [{ block: context(escaped) }] : sections(escaped, state, (piece) => `_${piece}_`);
    case 'attention':
      return sections(escaped, state, (piece) => `⚠️ ${piece}`);
    default:
      return sections(escaped, state);
  }
}

function renderQuote(block: Extract<Block, { type: 'quote' }>, state: RenderState): Piece[] {
  const escaped = escapeMrkdwn(block.text).trim();
  const quoted = escaped ? sections(escaped, state, (piece) => piece.split('\n').map((line) => `>${line}`).join('\n')) : [];
  const source = block.source?.trim() ? [{ block: context(`— ${escapeMrkdwn(block.source.trim())}`) }] : [];
  return [...quoted, ...source];
}

function renderFacts(block: Extract<Block, { type: 'facts' }>, state: RenderState): Piece[] {
  const fields = block.facts.map((fact) => {
    const text = `*${escapeMrkdwn(fact.title).trim() || '-'}*\n${escapeMrkdwn(fact.value).trim() || '-'}`;
    if (text.length > LIMITS.fieldText) state.shortened = true;
    return mrkdwn(clip(text, LIMITS.fieldText));
  });
  const pieces: Piece[] = [];
  for (let i = 0; i < fields.length; i += LIMITS.fieldsPerSection) {
    pieces.push({ block: { type: 'section', fields: fields.slice(i, i + LIMITS.fieldsPerSection) } });
  }
  return pieces;
}

function renderList(block: Extract<Block, { type: 'list' }>, state: RenderState): Piece[] {
  const lines = block.items.map((item, i) => `${block.ordered ? `${i + 1}.` : '•'} ${escapeMrkdwn(item).trim()}`);
  return lines.length ? sections(lines.join('\n'), state) : [];
}

function renderBlock(block: Block, state: RenderState): Piece[] {
  switch (block.type) {
    case 'text':
      return renderTextBlock(block, state);
    case 'quote':
      return renderQuote(block, state);
    case 'facts':
      return renderFacts(block, state);
    case 'list':
      return renderList(block, state);
    case 'input':
      return [];
  }
}

function headerPieces(card: Card, state: RenderState): Piece[] {
  const icon = card.tone === 'attention' ? '⚠️ ' : card.tone === 'good' ? '✅ ' : '';
  const title = `${icon}${plainText(card.title).trim() || 'Message'}`;
  if (title.length > LIMITS.headerText) state.shortened = true;
  const pieces: Piece[] = [{ block: { type: 'header', text: plain(title, LIMITS.headerText) }, keep: true }];
  if (card.subtitle?.trim()) pieces.push({ block: context(escapeMrkdwn(card.subtitle.trim())), keep: true });
  return pieces;
}

const isHttpUrl = (url: string): boolean => {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && url.length <= LIMITS.url;
  } catch {
    return false;
  }
};

/** How a submit button's value is made: its data as JSON, or (when that is too long) a reference the adapter resolves. */
export interface ActionValueOptions {
  /** Id of the stored copy of this card; lets an action whose data is too long for a button refer to it. */
  formId?: string;
}

/** The value of a submit button: the JSON of its data, or `{"form", "action"}` when the data is too long. */
export function submitValue(action: Extract<Action, { type: 'submit' }>, index: number, options: ActionValueOptions): string | undefined {
  const json = JSON.stringify(action.data);
  if (json.length <= LIMITS.buttonValue) return json;
  return options.formId ? JSON.stringify({ form: options.formId, action: index }) : undefined;
}

/** Whether a card needs a stored copy to work in Slack: it has a form, or a button whose data is too long for a button. */
export function needsStoredCopy(card: Card): boolean {
  return hasForm(card) || (card.actions ?? []).some((action) => action.type === 'submit' && JSON.stringify(action.data).length > LIMITS.buttonValue);
}

export const inputsOf = (card: Card): Input[] => card.blocks.flatMap((block) => (block.type === 'input' ? [block.input] : []));
/** A card with inputs and something to submit them with: a modal in Slack. */
export const hasForm = (card: Card): boolean => inputsOf(card).length > 0 && (card.actions ?? []).some((action) => action.type === 'submit');

function button(text: string, actionId: string, extra: Partial<types.Button>): types.Button {
  return { type: 'button', action_id: actionId.slice(0, LIMITS.actionId), text: plain(text, LIMITS.buttonText), ...extra };
}

function actionPieces(buttons: types.Button[]): Piece[] {
  const pieces: Piece[] = [];
  for (let i = 0; i < buttons.length; i += LIMITS.actionsPerBlock) {
    pieces.push({ block: { type: 'actions', elements: buttons.slice(i, i + LIMITS.actionsPerBlock) }, keep: true });
  }
  return pieces;
}

/** Buttons for a card's actions (submits and links); `skipSubmits` when the submits belong to a form. */
function renderButtons(actions: Action[], options: ActionValueOptions & { skipSubmits?: boolean }, state: RenderState): { buttons: types.Button[]; extra: Piece[] } {
  const buttons: types.Button[] = [];
  const extra: Piece[] = [];
  actions.forEach((action, index) => {
    if (action.title.length > LIMITS.buttonText) state.shortened = true;
    if (action.type === 'openUrl') {
      if (isHttpUrl(action.url)) buttons.push(button(action.title, `${ACTION_IDS.urlPrefix}${index}`, { url: action.url }));
      // Not a web link Slack can open: shown as text (escaped, so never a link), not dropped silently.
      else extra.push({ block: context(`${escapeMrkdwn(action.title)}: ${escapeMrkdwn(clip(action.url, 500))}`) });
      return;
    }
    if (options.skipSubmits) return;
    const value = submitValue(action, index, options);
    if (value === undefined) {
      state.shortened = true;
      extra.push({ block: context(`"${escapeMrkdwn(action.title)}" is not available in Slack for this message.`) });
      return;
    }
    const style = action.style === 'positive' ? 'primary' : action.style === 'destructive' ? 'danger' : undefined;
    buttons.push(button(action.title, `${ACTION_IDS.submitPrefix}${index}`, { value, ...(style ? { style } : {}) }));
  });
  return { buttons, extra };
}

function shortenedNote(dropped: number): SlackBlock {
  return context(dropped > 0 ? `✂️ Shortened to fit Slack: ${dropped} more part${dropped === 1 ? ' is' : 's are'} not shown.` : '✂️ Shortened to fit Slack.');
}

/**
 * Keeps at most `max` blocks: drops optional blocks from the end of the body (never headers,
 * buttons or inputs), putting one visible note where they were.
 */
function fit(pieces: Piece[], max: number, state: RenderState): SlackBlock[] {
  if (pieces.length + (state.shortened ? 1 : 0) <= max) {
    return [...pieces.map((piece) => piece.block), ...(state.shortened ? [shortenedNote(0)] : [])];
  }
  const kept = pieces.filter((piece) => piece.keep).length;
  let budget = Math.max(0, max - 1 - kept);
  const out: Array<SlackBlock | 'note'> = [];
  let dropped = 0;
  for (const piece of pieces) {
    if (piece.keep) out.push(piece.block);
    else if (budget > 0) {
      out.push(piece.block);
      budget -= 1;
    } else {
      if (dropped === 0) out.push('note');
      dropped += 1;
    }
  }
  const blocks = out.map((block) => (block === 'note' ? shortenedNote(dropped) : block));
  // Only a card with more required blocks than the surface allows gets here (hundreds of buttons).
  return blocks.length <= max ? blocks : [...blocks.slice(0, max - 1), shortenedNote(blocks.length - max + 1)];
}

// ---------------------------------------------------------------------------------------------
// Messages

export interface SlackMessage {
  /** Notification and screen-reader text (escaped like every mrkdwn text). */
  text: string;
  blocks: SlackBlock[];
}

/** The Block Kit message for a card. A card with a form shows an "Open form" button (given the stored form's id). */
export function renderCardMessage(card: Card, options: ActionValueOptions = {}): SlackMessage {
  const state: RenderState = { shortened: false };
  const form = hasForm(card);
  const pieces: Piece[] = [...headerPieces(card, state), ...card.blocks.flatMap((block) => renderBlock(block, state))];
  const { buttons, extra } = renderButtons(card.actions ?? [], { ...options, skipSubmits: form }, state);
  pieces.push(...extra);
  if (form) {
    if (options.formId) buttons.unshift(button('Open form', ACTION_IDS.openForm, { value: JSON.stringify({ form: options.formId }), style: 'primary' }));
    else pieces.push({ block: context('This form cannot be opened from this message. Please start again.'), keep: true });
  }
  pieces.push(...actionPieces(buttons));
  const blocks = fit(pieces, LIMITS.messageBlocks, state);
  const summary = [card.title, card.subtitle].filter((part) => part?.trim()).join(': ');
  return { text: clip(escapeMrkdwn(summary || 'Message'), LIMITS.fallbackText), blocks };
}

export function renderTextMessage(value: string): SlackMessage {
  const state: RenderState = { shortened: false };
  const escaped = escapeMrkdwn(value).trim() || '-';
  const blocks = fit(sections(escaped, state), LIMITS.messageBlocks, state);
  return { text: clip(escaped, LIMITS.fallbackText), blocks };
}

export function renderReplyMessage(reply: Reply, options: ActionValueOptions = {}): SlackMessage {
  return reply.type === 'text' ? renderTextMessage(reply.text) : renderCardMessage(reply.card, options);
}

/**
 * Packs rendered messages into as few Slack messages as fit (50 blocks each, a divider between
 * cards): fewer posts to the rate-limited chat.postMessage, and one send delivers a whole turn.
 */
export function packMessages(messages: SlackMessage[]): SlackMessage[] {
  const packed: SlackMessage[] = [];
  for (const message of messages) {
    const last = packed.at(-1);
    if (last && last.blocks.length + 1 + message.blocks.length <= LIMITS.messageBlocks) {
      last.blocks = [...last.blocks, { type: 'divider' }, ...message.blocks];
      last.text = clip(`${last.text}\n${message.text}`, LIMITS.fallbackText);
    } else packed.push({ text: message.text, blocks: [...message.blocks] });
  }
  return packed;
}

// ---------------------------------------------------------------------------------------------
// Modals

/** What a modal carries in private_metadata, and what the view_submission gets back. */
export interface FormMetadata {
  v: 1;
  /** The card's kind: a reply of the same kind with input errors is this form again, with errors. */
  kind: string;
  /** The submit action's data (route and the rest), or absent when it is looked up in the stored form. */
  data?: Record<string, unknown>;
  /** The stored form this modal was opened from (when there is one). */
  form?: string;
  /** Index of the submit action in the stored form's actions (when `data` did not fit). */
  action?: number;
  /** The conversation the form belongs to, so the turn reads the same conversation state. */
  conversation?: { id: string; kind: 'personal' | 'group' | 'channel' };
}

export interface ModalOptions {
  form?: string;
  conversation?: FormMetadata['conversation'];
}

const choiceOption = (choice: { title: string; value: string }): types.PlainTextOption => ({ text: plain(choice.title, LIMITS.optionText), value: choice.value });

function checkChoices(input: Extract<Input, { kind: 'choice' }>): void {
  const long = input.choices.find((choice) => choice.value.length > LIMITS.optionValue || choice.value.length === 0);
  if (long) throw new SlackRenderError(`choice values of "${input.id}" must be 1 to ${LIMITS.optionValue} characters for Slack`);
  if (input.choices.length > LIMITS.selectOptions * LIMITS.optionGroups) throw new SlackRenderError(`"${input.id}" has more choices than Slack can show`);
}

/** A select's options, in groups of 100 when there are more (Slack allows 100 options, or 100 groups of 100). */
function selectOptions(input: Extract<Input, { kind: 'choice' }>): Pick<types.StaticSelect, 'options' | 'option_groups'> {
  const options = input.choices.map(choiceOption);
  if (options.length <= LIMITS.selectOptions) return { options };
  const groups: Array<{ label: types.PlainTextElement; options: types.PlainTextOption[] }> = [];
  for (let i = 0; i < options.length; i += LIMITS.selectOptions) {
    const slice = options.slice(i, i + LIMITS.selectOptions);
    groups.push({ label: plain(`${i + 1} to ${i + slice.length}`, LIMITS.optionText), options: slice });
  }
  return { option_groups: groups };
}

function inputElement(input: Input): { element: types.InputBlock['element']; optional: boolean } {
  switch (input.kind) {
    case 'text': {
      const maxLength = Math.min(input.maxLength ?? LIMITS.textInputLength, LIMITS.textInputLength);
      return {
        optional: !input.required,
        element: {
          type: 'plain_text_input',
          action_id: INPUT_ACTION_IDS.text,
          multiline: input.multiline ?? false,
          max_length: maxLength,
          ...(input.value ? { initial_value: plainText(input.value).slice(0, maxLength) } : {}),
          ...(input.placeholder ? { placeholder: plain(input.placeholder, LIMITS.placeholder) } : {}),
        },
      };
    }
    case 'choice': {
      checkChoices(input);
      const selected = new Set((input.value ?? '').split(',').map((v) => v.trim()).filter(Boolean));
      const picked = input.choices.filter((choice) => selected.has(choice.value)).map(choiceOption);
      if (input.multiple) {
        if (input.choices.length <= LIMITS.checkboxOptions) {
          return { optional: !input.required, element: { type: 'checkboxes', action_id: INPUT_ACTION_IDS.choices, options: input.choices.map(choiceOption), ...(picked.length ? { initial_options: picked } : {}) } };
        }
        return {
          optional: !input.required,
          element: { type: 'multi_static_select', action_id: INPUT_ACTION_IDS.choices, placeholder: plain('Choose', LIMITS.placeholder), ...selectOptions(input), ...(picked.length ? { initial_options: picked } : {}) },
        };
      }
      const initial = picked[0] ? { initial_option: picked[0] } : {};
      // Like the Adaptive Card: a few choices shown at once, more in a menu.
      if (input.choices.length <= 5) return { optional: !input.required, element: { type: 'radio_buttons', action_id: INPUT_ACTION_IDS.choice, options: input.choices.map(choiceOption), ...initial } };
      return { optional: !input.required, element: { type: 'static_select', action_id: INPUT_ACTION_IDS.choice, placeholder: plain('Choose', LIMITS.placeholder), ...selectOptions(input), ...initial } };
    }
    case 'toggle': {
      const yes: types.PlainTextOption = { text: plain('Yes', LIMITS.optionText), value: 'true' };
      return { optional: true, element: { type: 'checkboxes', action_id: INPUT_ACTION_IDS.toggle, options: [yes], ...(input.value ? { initial_options: [yes] } : {}) } };
    }
    case 'date':
      return {
        optional: !input.required,
        element: { type: 'datepicker', action_id: INPUT_ACTION_IDS.date, ...(input.value && /^\d{4}-\d{2}-\d{2}$/.test(input.value) ? { initial_date: input.value } : {}) },
      };
  }
}

function inputPieces(input: Input, state: RenderState): Piece[] {
  if (input.id.length === 0 || input.id.length > LIMITS.blockId) throw new SlackRenderError(`input id "${input.id.slice(0, 40)}" must be 1 to ${LIMITS.blockId} characters for Slack`);
  if (input.label.length > LIMITS.inputLabel) state.shortened = true;
  if (input.kind === 'choice' && input.choices.length === 0) {
    return [{ block: context(`${escapeMrkdwn(input.label)}: nothing to choose from.`), keep: true }];
  }
  const { element, optional } = inputElement(input);
  const pieces: Piece[] = [{ block: { type: 'input', block_id: input.id, label: plain(input.label, LIMITS.inputLabel), optional, element }, keep: true }];
  if (input.error) pieces.push({ block: context(`⚠️ ${escapeMrkdwn(input.error)}`), keep: true });
  return pieces;
}

/** The submit action a modal's own Submit button sends: the first positive one, else the first. */
export function primarySubmitIndex(card: Card): number {
  const actions = card.actions ?? [];
  const positive = actions.findIndex((action) => action.type === 'submit' && action.style === 'positive');
  return positive >= 0 ? positive : actions.findIndex((action) => action.type === 'submit');
}

export function encodeMetadata(metadata: FormMetadata): string {
  return JSON.stringify(metadata);
}

/** The modal for a card with inputs. Throws SlackRenderError when the form cannot be shown in Slack. */
export function renderModal(card: Card, options: ModalOptions = {}): ModalView {
  const state: RenderState = { shortened: false };
  const primary = primarySubmitIndex(card);
  const inputs = inputsOf(card);
  if (inputs.length === 0 || primary < 0) throw new SlackRenderError('a modal needs inputs and a submit action');
  const ids = new Set<string>();
  for (const input of inputs) {
    if (ids.has(input.id)) throw new SlackRenderError(`two inputs have the id "${input.id}"`);
    ids.add(input.id);
  }
  const submit = (card.actions ?? [])[primary] as Extract<Action, { type: 'submit' }>;
  let metadata: FormMetadata = { v: 1, kind: card.kind, data: submit.data, ...(options.form ? { form: options.form } : {}), ...(options.conversation ? { conversation: options.conversation } : {}) };
  if (encodeMetadata(metadata).length > LIMITS.privateMetadata) {
    if (!options.form) throw new SlackRenderError('the form\'s data is too long for a Slack modal');
    metadata = { v: 1, kind: card.kind, form: options.form, action: primary, ...(options.conversation ? { conversation: options.conversation } : {}) };
  }
  const title = plainText(card.title).trim() || 'Form';
  const pieces: Piece[] = [];
  // A modal's title holds 24 characters: a longer one is repeated in full as a header.
  if (title.length > LIMITS.modalTitle) pieces.push(...headerPieces(card, state));
  else if (card.subtitle?.trim()) pieces.push({ block: context(escapeMrkdwn(card.subtitle.trim())), keep: true });
  for (const block of card.blocks) pieces.push(...(block.type === 'input' ? inputPieces(block.input, state) : renderBlock(block, state)));
  // Other actions: links, and further submits (e.g. "Cancel report") as buttons inside the modal.
  const others = (card.actions ?? []).map((action, index) => ({ action, index })).filter(({ index }) => index !== primary);
  const buttons: types.Button[] = [];
  for (const { action, index } of others) {
    if (action.type === 'openUrl') {
      if (isHttpUrl(action.url)) buttons.push(button(action.title, `${ACTION_IDS.urlPrefix}${index}`, { url: action.url }));
      continue;
    }
    const value = submitValue(action, index, { formId: options.form });
    if (value === undefined) continue;
    const style = action.style === 'positive' ? 'primary' : action.style === 'destructive' ? 'danger' : undefined;
    buttons.push(button(action.title, `${ACTION_IDS.submitPrefix}${index}`, { value, ...(style ? { style } : {}) }));
  }
  pieces.push(...actionPieces(buttons));
  return {
    type: 'modal',
    callback_id: FORM_CALLBACK_ID,
    title: plain(title, LIMITS.modalTitle),
    submit: plain(submit.title, LIMITS.modalButton),
    close: plain('Cancel', LIMITS.modalButton),
    private_metadata: encodeMetadata(metadata),
    blocks: fit(pieces, LIMITS.viewBlocks, state),
  };
}

/** A small modal that only says something (a refusal, a confirmation); closing it is all the user can do. */
export function noticeView(title: string, replies: Reply[]): ModalView {
  const state: RenderState = { shortened: false };
  const pieces = replies.flatMap((reply, i): Piece[] => {
    const divider: Piece[] = i > 0 ? [{ block: { type: 'divider' } }] : [];
    if (reply.type === 'text') return [...divider, ...sections(escapeMrkdwn(reply.text).trim() || '-', state)];
    const { buttons } = renderButtons(reply.card.actions ?? [], { skipSubmits: true }, state);
    return [...divider, ...headerPieces(reply.card, state), ...reply.card.blocks.flatMap((block) => renderBlock(block, state)), ...actionPieces(buttons)];
  });
  return {
    type: 'modal',
    callback_id: NOTICE_CALLBACK_ID,
    title: plain(title, LIMITS.modalTitle),
    close: plain('Close', LIMITS.modalButton),
    blocks: fit(pieces.length ? pieces : sections('-', state), LIMITS.viewBlocks, state),
  };
}

// ---------------------------------------------------------------------------------------------
// App Home

export interface HomeContent {
  /** Cards shown first (e.g. the user's pending acknowledgements, when that feature provides them). */
  sections: Card[];
  /** What the bot says to "help" for this user (the core's help card, or a text reply). */
  help: Reply[];
}

/** The App Home tab: pending items (when provided), the help, and shortcuts. Cards with forms show their text and an "Open form" when stored. */
export function renderHome(content: HomeContent): HomeView {
  const state: RenderState = { shortened: false };
  const cardPieces = (card: Card): Piece[] => {
    const { buttons, extra } = renderButtons(card.actions ?? [], { skipSubmits: hasForm(card) }, state);
    return [...headerPieces(card, state), ...card.blocks.flatMap((block) => renderBlock(block, state)), ...extra, ...actionPieces(buttons)];
  };
  const pieces: Piece[] = [];
  for (const card of content.sections) pieces.push(...cardPieces(card), { block: { type: 'divider' } });
  for (const reply of content.help) pieces.push(...(reply.type === 'text' ? sections(escapeMrkdwn(reply.text), state) : cardPieces(reply.card)));
  pieces.push(
    { block: { type: 'divider' } },
    { block: { type: 'header', text: plain('Shortcuts', LIMITS.headerText) }, keep: true },
    {
      block: {
        type: 'section',
        text: mrkdwn(
          [
            '• `/aup your question`: ask about our policies; only you see the answer.',
            '• `/report-incident`: report an incident or concern in a form.',
            '• On any message, *More actions › Report this message* starts a report about it.',
            '• Or message me here in the *Messages* tab.',
          ].join('\n'),
        ),
      },
    },
    { block: { type: 'actions', elements: [button('Report an incident', ACTION_IDS.homeReport, { style: 'primary', value: '{}' })] }, keep: true },
  );
  return { type: 'home', blocks: fit(pieces, LIMITS.viewBlocks, state) };
}
