/**
 * Issue 6 on the running server: signed Slack requests (events, slash commands, block_actions,
 * view_submission, shortcuts) in, Block Kit out to a loopback fake of the Web API and of
 * response_url. Bolt is real; only Slack is faked. Scenarios run in order and build on each other
 * (the teacher's question, then the coordinator's answer).
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTION_IDS } from '../../src/adapters/slack/block-kit.ts';
import type { UserRecord } from '../../src/bot/directory.ts';
import type { EscalationRecord, QuestionRecord } from '../../src/bot/features/qa.ts';
import { loadPolicyDirectory } from '../../src/policies/load.ts';
import { repoRoot, startApp, type RunningApp } from '../helpers/app.ts';
import { memoryLog } from '../helpers/memory-log.ts';
import { blockActionPayload, blocksText, slackRequests, startFakeSlack, viewState, type FakeSlack, type SlackCall, type SlackRequests } from '../helpers/fake-slack.ts';

const TEAM = 'T0SLACK';
const SCHOOL = 'slack-school';
const signingSecret = randomBytes(16).toString('hex');

let running: RunningApp;
let slack: FakeSlack;
let requests: SlackRequests;
const logs = memoryLog('info');

beforeAll(async () => {
  slack = await startFakeSlack();
  running = await startApp({ SLACK_SIGNING_SECRET: signingSecret, SLACK_BOT_TOKEN: 'xoxb-test', SLACK_API_URL: `${slack.url}/api/` }, { log: logs.log });
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Slack School', slackTeam: TEAM });
  const loaded = await loadPolicyDirectory(path.join(repoRoot, 'policies'));
  await running.app.library.import(SCHOOL, loaded.documents, 'test');
  requests = slackRequests(running.url, signingSecret, TEAM);
});
afterAll(async () => {
  await running?.stop();
  await slack?.close();
});

type Json = Record<string, any>;
let sequence = 0;
const unique = (prefix: string) => `${prefix}${++sequence}`;

/** Sends a direct message and returns the bot's next chat.postMessage into that DM. */
async function dm(user: string, text: string): Promise<SlackCall> {
  const channel = `D${user.slice(1)}`;
  const before = slack.callsOf('chat.postMessage').length;
  const response = await requests.event({ type: 'message', channel_type: 'im', channel, user, text, ts: `${Date.now() / 1000}` });
  expect(response.status).toBe(200);
  const posts = await slack.waitFor('chat.postMessage', before + 1);
  const post = posts.slice(before).find((call) => call.body.channel === channel);
  expect(post, `a reply in ${channel}`).toBeDefined();
  return post!;
}

const buttonsOf = (blocks: Json[]): Json[] => blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements);
const button = (blocks: Json[], title: string): Json => {
  const found = buttonsOf(blocks).find((b) => b.text.text === title);
  expect(found, `button "${title}" (there are: ${buttonsOf(blocks).map((b) => b.text.text).join(', ')})`).toBeDefined();
  return found!;
};

/** A block_actions payload for a button on a message in `channel` (or in a modal), as Slack sends it. */
function blockAction(user: string, pressed: Json, where: { channel?: string; responseId?: string; ephemeral?: boolean; view?: Json; trigger?: string }): Json {
  return blockActionPayload(TEAM, user, pressed, { ...where, responseUrl: slack.responseUrl(where.responseId ?? unique('resp-')) });
}

/** A view_submission for a modal the bot opened, with Slack's own state values. */
function viewSubmission(user: string, opened: Json, answers: Record<string, string | string[] | boolean | undefined>): Json {
  return {
    type: 'view_submission',
    team: { id: TEAM, domain: 'school' },
    user: { id: user, username: user.toLowerCase(), team_id: TEAM },
    api_app_id: 'A0TEST',
    token: 'legacy',
    trigger_id: unique('trigger-'),
    view: { ...opened, id: opened.id ?? 'V0OPENED', team_id: TEAM, hash: 'hash', state: { values: viewState(opened, answers) } },
  };
}

/**
 * Waits for a chat.postMessage into `channel` after the first `since` ones. Proactive messages may
 * go through the outbox, which sends in the background: they can arrive after the turn's own reply.
 */
async function postTo(channel: string, since: number, timeoutMs = 15_000): Promise<SlackCall> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = slack.callsOf('chat.postMessage').slice(since).find((call) => call.body.channel === channel);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no chat.postMessage to ${channel}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The POST to response URL `id`, once it has arrived (the fake's own wait). */
const responseTo = (id: string) => slack.responseTo(id);

const questions = async () => (await running.app.store.list<QuestionRecord>('question', SCHOOL)).map((r) => r.data);
const escalations = async () => (await running.app.store.list<EscalationRecord>('escalation', SCHOOL)).map((r) => r.data);

describe('a question in a direct message', () => {
  let answer: SlackCall;

  it('is answered in Block Kit: the section as the header, the citation, the quote, and buttons carrying the submit data', async () => {
    answer = await dm('U0TEACHER', 'can pupils use phones in class?');
    const blocks = answer.body.blocks as Json[];
    expect(answer.authorization).toBe('Bearer xoxb-test');
    expect(blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text', text: "Pupils' phones during the school day" } });
    expect(blocks[1]).toMatchObject({ type: 'context', elements: [{ type: 'mrkdwn', verbatim: true, text: expect.stringContaining('Mobile Phones and Personal Devices Policy') }] });
    expect(blocks.find((b) => b.type === 'section')?.text.text).toMatch(/^>Harbour Lane Academy is a phone-free school/);
    expect(buttonsOf(blocks).map((b) => b.text.text)).toEqual(['Open the whole section', 'Helpful', 'Not helpful', 'Ask the coordinator']);
    const helpful = JSON.parse(button(blocks, 'Helpful').value);
    expect(helpful).toMatchObject({ route: 'qa.feedback', helpful: true, questionId: expect.any(String) });
    expect(button(blocks, 'Helpful').action_id).toMatch(/^esafety\.submit\.\d+$/);
    expect(answer.body.text).toMatch(/Pupils' phones during the school day/);
    // Form-encoded by the Web API client, so booleans arrive as text.
    expect(answer.body).toMatchObject({ unfurl_links: 'false', unfurl_media: 'false' });
  });

  it('keeps the DM as the user\'s reference for proactive messages: { teamId, userId, channel }', async () => {
    const user = await running.app.directory.getUser(SCHOOL, 'U0TEACHER');
    expect(user?.data).toMatchObject({ platform: 'slack', reference: { teamId: TEAM, userId: 'U0TEACHER', channel: 'D0TEACHER' } });
  });

  it('acknowledges a button at once and answers through its response_url; the feedback is recorded', async () => {
    const started = Date.now();
    const response = await requests.interaction(blockAction('U0TEACHER', button(answer.body.blocks, 'Helpful'), { channel: 'D0TEACHER', responseId: 'helpful-1' }));
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
    const reply = await responseTo('helpful-1');
    // A visible message in the DM, not replacing the answer.
    expect(reply.body).toMatchObject({ response_type: 'in_channel', replace_original: false });
    expect(blocksText(reply.body.blocks)).toBe('Thanks, glad it helped.');
    const [record] = (await questions()).filter((q) => q.askedBy === 'U0TEACHER');
    expect(record?.feedback).toBe('helpful');
  });

  it('opens the whole section from its button, split over sections of at most 3,000 characters', async () => {
    const response = await requests.interaction(blockAction('U0TEACHER', button(answer.body.blocks, 'Open the whole section'), { channel: 'D0TEACHER', responseId: 'section-1' }));
    expect(response.status).toBe(200);
    const reply = await responseTo('section-1');
    expect(reply.body.blocks[0]).toMatchObject({ type: 'header' });
    for (const block of reply.body.blocks as Json[]) if (block.type === 'section') expect(block.text.text.length).toBeLessThanOrEqual(3000);
  });
});

describe('a question the policies do not cover, answered by a coordinator on Slack', () => {
  let notCovered: SlackCall;
  let escalationPost: SlackCall;
  let modal: Json;

  beforeAll(async () => {
    // Known to the bot, but never in a DM with it: the reference has no channel, so the DM is opened.
    await running.app.directory.noteUserSeen(SCHOOL, { id: 'U0COORD', platform: 'slack', name: 'Casey', reference: { teamId: TEAM, userId: 'U0COORD' } });
    await running.app.directory.grantRole(SCHOOL, 'U0COORD', 'coordinator');
  });

  it('escalates from the teacher\'s button to the coordinator\'s DM through conversations.open and chat.postMessage, with an "Open form" button', async () => {
    notCovered = await dm('U0TEACHER2', 'when is the staff christmas party');
    expect(notCovered.body.blocks[0].text.text).toBe("Our policies don't cover that");
    const opensBefore = slack.callsOf('conversations.open').length;
    const postsBefore = slack.callsOf('chat.postMessage').length;
    const response = await requests.interaction(blockAction('U0TEACHER2', button(notCovered.body.blocks, 'Ask the coordinator'), { channel: 'D0TEACHER2', responseId: 'escalate-1' }));
    expect(response.status).toBe(200);

    const reply = await responseTo('escalate-1');
    expect(blocksText(reply.body.blocks)).toMatch(/I've sent your question to the e-safety coordinator/);
    escalationPost = await postTo('D0COORD', postsBefore);
    const opened = slack.callsOf('conversations.open').slice(opensBefore);
    expect(opened.map((call) => call.body.users)).toContain('U0COORD');
    expect(escalationPost.body.blocks[0].text.text).toBe('A question the policies do not answer');
    expect(blocksText(escalationPost.body.blocks)).toContain('when is the staff christmas party');
    const open = button(escalationPost.body.blocks, 'Open form');
    expect(open.action_id).toBe(ACTION_IDS.openForm);
    expect(JSON.parse(open.value)).toEqual({ form: expect.stringMatching(/^form-/) });
    expect(await running.app.store.list('slack-form', SCHOOL)).toHaveLength(1);
  });

  it('opens the form as a modal when the coordinator presses "Open form" (views.open with the trigger)', async () => {
    const before = slack.callsOf('views.open').length;
    const response = await requests.interaction(blockAction('U0COORD', button(escalationPost.body.blocks, 'Open form'), { channel: 'D0COORD', trigger: 'trigger-open-1' }));
    expect(response.status).toBe(200);
    const [call] = (await slack.waitFor('views.open', before + 1)).slice(before);
    expect(call!.body.trigger_id).toBe('trigger-open-1');
    modal = { ...call!.body.view, id: 'V0ESCALATION' };
    expect(modal).toMatchObject({ type: 'modal', callback_id: 'esafety.form', submit: { text: 'Send answer' } });
    expect(modal.blocks.filter((b: Json) => b.type === 'input').map((b: Json) => b.block_id)).toEqual(['answer', 'save']);
    expect(JSON.parse(modal.private_metadata)).toMatchObject({ kind: 'qa.escalation', data: { route: 'qa.reply' }, conversation: { id: 'D0COORD', kind: 'personal' } });
  });

  it('does not open someone else\'s form', async () => {
    const before = slack.callsOf('views.open').length;
    await requests.interaction(blockAction('U0TEACHER', button(escalationPost.body.blocks, 'Open form'), { channel: 'D0TEACHER', responseId: 'not-yours' }));
    expect(blocksText((await responseTo('not-yours')).body.blocks)).toMatch(/That form has gone or is not yours/);
    expect(slack.callsOf('views.open').length).toBe(before);
  });

  it('closes the modal and says so in the DM when the core refuses the answer (blank); nothing is saved', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const response = await requests.interaction(viewSubmission('U0COORD', modal, { answer: '   ', save: true }));
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    expect(blocksText((await postTo('D0COORD', before)).body.blocks)).toBe('Please type an answer before sending.');
    expect((await escalations())[0]).toMatchObject({ status: 'open' });
  });

  it('sends the answer: the modal closes, the teacher gets it in their DM, the coordinator the thanks, the stored form is gone', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const response = await requests.interaction(viewSubmission('U0COORD', modal, { answer: 'Friday 18 December, 7pm, in the hall. <!channel>', save: true }));
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    const toTeacher = await postTo('D0TEACHER2', before);
    const toCoordinator = await postTo('D0COORD', before);
    expect(toTeacher?.body.blocks[0].text.text).toBe('The e-safety coordinator has answered your question');
    // The coordinator's text is quoted, escaped: it cannot ping the teacher's workspace.
    expect(blocksText(toTeacher!.body.blocks)).toContain('>Friday 18 December, 7pm, in the hall. &lt;!channel&gt;');
    expect(blocksText(toCoordinator!.body.blocks)).toMatch(/Your answer has been sent\..*saved, so the next person who asks gets it at once/);
    expect((await escalations())[0]).toMatchObject({ status: 'answered', answeredBy: 'U0COORD', saved: true });
    expect(await running.app.store.list('slack-form', SCHOOL)).toHaveLength(0);
  });
});

describe('/aup and /report-incident', () => {
  it('answers /aup through respond() (the response_url), only to the person who asked', async () => {
    const started = Date.now();
    const response = await requests.command({ command: '/aup', text: 'can I use my personal phone to take photos of pupils?', user_id: 'U0TEACHER', user_name: 'tess', channel_id: 'C0STAFFROOM', channel_name: 'staffroom', response_url: slack.responseUrl('aup-1'), trigger_id: unique('trigger-') });
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
    const reply = await responseTo('aup-1');
    expect(reply.body).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(reply.body.blocks[0].type).toBe('header');
    expect(buttonsOf(reply.body.blocks).map((b) => b.text.text)).toContain('Helpful');
  });

  let reportModal: Json;

  it('opens the incident report form as a modal for /report-incident', async () => {
    const before = slack.callsOf('views.open').length;
    const response = await requests.command({ command: '/report-incident', text: '', user_id: 'U0REPORTER', user_name: 'rita', channel_id: 'C0STAFFROOM', channel_name: 'staffroom', response_url: slack.responseUrl('report-1'), trigger_id: 'trigger-report-1' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    const [call] = (await slack.waitFor('views.open', before + 1)).slice(before);
    expect(call!.body.trigger_id).toBe('trigger-report-1');
    reportModal = { ...call!.body.view, id: 'V0REPORT' };
    expect(reportModal.title.text).toBe('Report an incident or c…');
    expect(JSON.parse(reportModal.private_metadata)).toMatchObject({ kind: 'form.incident', data: { route: 'incident.submit', draftId: expect.any(String) }, conversation: { id: 'C0STAFFROOM', kind: 'channel' } });
    const inputs = Object.fromEntries(reportModal.blocks.filter((b: Json) => b.type === 'input').map((b: Json) => [b.block_id, b.element.type]));
    expect(inputs).toMatchObject({ category: 'static_select', riskAreas: 'checkboxes', childAtRisk: 'radio_buttons', details: 'plain_text_input' });
    expect(slack.rejected).toEqual([]);
  });

  it('keeps the modal open with per-field errors (response_action: errors) when the core finds mistakes; no case is created', async () => {
    const response = await requests.interaction(viewSubmission('U0REPORTER', reportModal, { category: 'cyberbullying', place: 'Year 9 group chat' }));
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.response_action).toBe('errors');
    expect(Object.keys(body.errors)).toEqual(expect.arrayContaining(['riskAreas', 'childAtRisk', 'occurredAt', 'details', 'actionsTaken', 'dslToldInPerson']));
    expect(body.errors.details).toMatch(/please answer this/);
    expect(body.errors).not.toHaveProperty('category');
    const shown = new Set(reportModal.blocks.filter((b: Json) => b.type === 'input').map((b: Json) => b.block_id));
    for (const id of Object.keys(body.errors)) expect(shown.has(id)).toBe(true);
    expect(await running.app.store.list('case', SCHOOL)).toHaveLength(0);
  });

  it('sends the corrected report: the modal closes and the reference comes to the reporter\'s DM', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const response = await requests.interaction(
      viewSubmission('U0REPORTER', reportModal, {
        category: 'cyberbullying',
        riskAreas: ['conduct'],
        childAtRisk: 'false',
        occurredAt: '2026-11-20 10:30',
        place: 'Year 9 group chat',
        details: 'Unkind messages about a pupil in the group chat.',
        actionsTaken: 'Spoke to the pupils; screenshots not taken.',
        dslToldInPerson: 'false',
      }),
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    const toReporter = await postTo('D0REPORTER', before);
    expect(blocksText(toReporter!.body.blocks)).toMatch(/Thank you\. Your report is INC-\d{4}-\d+/);
    expect(await running.app.store.list('case', SCHOOL)).toHaveLength(1);
  });

  it('cancels a report from the button inside the modal: the modal shows the answer (views.update)', async () => {
    const opened = slack.callsOf('views.open').length;
    await requests.command({ command: '/report-incident', text: '', user_id: 'U0CANCELLER', channel_id: 'C0STAFFROOM', response_url: slack.responseUrl('report-2'), trigger_id: 'trigger-report-2' });
    const view = { ...(await slack.waitFor('views.open', opened + 1))[opened]!.body.view, id: 'V0CANCEL', hash: 'h1' };
    view.state = { values: viewState(view, {}) };
    const updates = slack.callsOf('views.update').length;
    const response = await requests.interaction(blockAction('U0CANCELLER', button(view.blocks, 'Cancel report'), { view }));
    expect(response.status).toBe(200);
    const [update] = (await slack.waitFor('views.update', updates + 1)).slice(updates);
    expect(update!.body.view_id).toBe('V0CANCEL');
    expect(blocksText(update!.body.view.blocks)).toMatch(/Your draft report is cancelled and deleted/);
  });

  it('starts a report about a message from the message shortcut, with the message in the form', async () => {
    const before = slack.callsOf('views.open').length;
    const response = await requests.interaction({
      type: 'message_action',
      callback_id: 'report_message',
      team: { id: TEAM, domain: 'school' },
      user: { id: 'U0SHORTCUT', username: 'sam', team_id: TEAM },
      channel: { id: 'C0YEAR9', name: 'year9' },
      message: { type: 'message', user: 'U0PUPIL', ts: '1700000000.000200', text: 'meet me after school, don\'t tell anyone' },
      trigger_id: 'trigger-shortcut-1',
      response_url: slack.responseUrl('shortcut-1'),
      message_ts: '1700000000.000200',
      token: 'legacy',
      action_ts: '1700000001.0',
    });
    expect(response.status).toBe(200);
    const [call] = (await slack.waitFor('views.open', before + 1)).slice(before);
    const details = call!.body.view.blocks.find((b: Json) => b.block_id === 'details');
    expect(details.element.initial_value).toBe("Slack message from U0PUPIL:\nmeet me after school, don't tell anyone");
  });
});

describe('the App Home tab and mentions', () => {
  it('publishes the Home tab (help and shortcuts) when it is opened', async () => {
    const before = slack.callsOf('views.publish').length;
    const response = await requests.event({ type: 'app_home_opened', user: 'U0HOME', channel: 'D0HOME', tab: 'home', event_ts: '1700000000.1' });
    expect(response.status).toBe(200);
    const [call] = (await slack.waitFor('views.publish', before + 1)).slice(before);
    expect(call!.body.user_id).toBe('U0HOME');
    expect(call!.body.view.type).toBe('home');
    const shown = blocksText(call!.body.view.blocks);
    expect(shown).toContain('Slack School: our e-safety and acceptable use policies, in chat');
    expect(shown).toContain('/report-incident');
    expect(button(call!.body.view.blocks, 'Report an incident').action_id).toBe(ACTION_IDS.homeReport);
    const user = await running.app.directory.getUser(SCHOOL, 'U0HOME');
    expect((user?.data as UserRecord).reference).toEqual({ teamId: TEAM, userId: 'U0HOME', channel: 'D0HOME' });
  });

  it('answers an @mention privately (chat.postEphemeral) in the channel', async () => {
    const before = slack.callsOf('chat.postEphemeral').length;
    await requests.event({ type: 'app_mention', user: 'U0TEACHER', channel: 'C0STAFFROOM', text: '<@U0BOT> whoami', ts: '1700000000.3' });
    const [call] = (await slack.waitFor('chat.postEphemeral', before + 1)).slice(before);
    expect(call!.body).toMatchObject({ channel: 'C0STAFFROOM', user: 'U0TEACHER' });
    expect(blocksText(call!.body.blocks)).toMatch(/\*User id\*\nU0TEACHER/);
  });
});

describe('bad input: refused, or a clear message, and nothing half-saved', () => {
  const command = (fields: Record<string, string> = {}) => ({ command: '/aup', text: 'can pupils use phones in class?', user_id: 'U0BAD', channel_id: 'C0X', response_url: slack.responseUrl(unique('bad-')), trigger_id: 't', ...fields });

  it('refuses a slash command with a wrong signature, or signed 10 minutes ago, with 401 and no answer', async () => {
    const questionsBefore = (await questions()).length;
    const responseCalls = slack.callsOf('response_url').length;
    expect((await requests.command(command(), { secret: 'not-the-secret' })).status).toBe(401);
    expect((await requests.command(command(), { timestamp: Math.floor(Date.now() / 1000) - 600 })).status).toBe(401);
    expect((await requests.interaction(blockAction('U0BAD', { action_id: 'esafety.submit.0', value: '{"route":"qa.feedback"}' }, { channel: 'D0BAD' }), { signature: 'v0=deadbeef' })).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await questions()).length).toBe(questionsBefore);
    expect(slack.callsOf('response_url').length).toBe(responseCalls);
  });

  it('answers an unknown slash command in the acknowledgement', async () => {
    const response = await requests.command(command({ command: '/nope' }));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/I don't know the command \/nope\. Try \/aup/) });
  });

  it.each([
    ['an unknown action id', { action_id: 'somebody.else', value: '{"route":"qa.feedback"}' }],
    ['a value that is not JSON', { action_id: 'esafety.submit.0', value: 'not json' }],
    ['a value without a route', { action_id: 'esafety.submit.0', value: '{"questionId":"x"}' }],
    ['an "Open form" for no form', { action_id: ACTION_IDS.openForm, value: '{"nope":1}' }],
  ])('says it did not recognise a button with %s, without a turn', async (_what, pressed) => {
    const id = unique('unknown-');
    const questionsBefore = await questions();
    const response = await requests.interaction(blockAction('U0BAD', pressed, { channel: 'D0BAD', responseId: id }));
    expect(response.status).toBe(200);
    expect(blocksText((await responseTo(id)).body.blocks)).toMatch(/didn't recognise that button/);
    expect(await questions()).toEqual(questionsBefore);
    expect(await running.app.directory.getUser(SCHOOL, 'U0BAD')).toBeUndefined();
  });

  it('passes a well-formed button for a route nobody knows to the core, which says so', async () => {
    const id = unique('route-');
    await requests.interaction(blockAction('U0BAD2', { action_id: 'esafety.submit.0', value: '{"route":"no.such.route"}' }, { channel: 'D0BAD2', responseId: id }));
    expect(blocksText((await responseTo(id)).body.blocks)).toMatch(/didn't recognise that button or form/);
  });

  const opened = (overrides: Json = {}): Json => ({
    id: 'V0BAD',
    type: 'modal',
    callback_id: 'esafety.form',
    private_metadata: JSON.stringify({ v: 1, kind: 'qa.escalation', data: { route: 'qa.reply', escalationId: 'esc-nope' } }),
    blocks: [{ type: 'input', block_id: 'answer', label: { type: 'plain_text', text: 'Answer' }, element: { type: 'plain_text_input', action_id: 'text' } }],
    ...overrides,
  });

  it.each([
    ['tampered private_metadata', viewSubmission('U0BAD', opened({ private_metadata: '{"v":1,"kind":"x"' }), { answer: 'x' })],
    ['metadata without a route', viewSubmission('U0BAD', opened({ private_metadata: JSON.stringify({ v: 1, kind: 'x', data: { escalationId: 'e' } }) }), { answer: 'x' })],
    ['an unknown callback_id', viewSubmission('U0BAD', opened({ callback_id: 'someone.elses' }), { answer: 'x' })],
    ['a state value of an element this bot never renders', { ...viewSubmission('U0BAD', opened(), { answer: 'x' }), view: { ...opened(), state: { values: { answer: { text: { type: 'rich_text_input', rich_text_value: {} } } } } } }],
  ])('refuses a view_submission with %s: the modal says nothing was saved', async (_what, payload) => {
    const before = slack.calls.length;
    const escalationsBefore = await escalations();
    const response = await requests.interaction(payload);
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.response_action).toBe('update');
    expect(blocksText(body.view.blocks)).toMatch(/couldn't read that form .* nothing was saved/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(slack.calls.slice(before)).toEqual([]);
    expect(await escalations()).toEqual(escalationsBefore);
  });

  it('refuses a view_submission without a view with 400, at once', async () => {
    const before = slack.calls.length;
    const response = await requests.interaction({ type: 'view_submission', team: { id: TEAM }, user: { id: 'U0BAD' }, api_app_id: 'A0TEST' });
    expect(response.status).toBe(400);
    expect(slack.calls.slice(before)).toEqual([]);
  });

  it('refuses a signed payload of no kind Slack sends with 400, at once', async () => {
    const started = Date.now();
    const response = await requests.raw(JSON.stringify({ type: 'not_a_slack_payload', hello: 'world' }), 'application/json');
    expect(response.status).toBe(400);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refuses an event signed 5 minutes and 30 seconds ago (Slack\'s window is 5 minutes), and takes one signed 4 minutes ago', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const event = { type: 'message', channel_type: 'im', channel: 'D0LATE', user: 'U0LATE', text: 'whoami', ts: '1700000000.000900' };
    expect((await requests.event(event, { timestamp: Math.floor(Date.now() / 1000) - 330 })).status).toBe(401);
    expect(await running.app.directory.getUser(SCHOOL, 'U0LATE')).toBeUndefined();
    expect((await requests.event(event, { timestamp: Math.floor(Date.now() / 1000) - 240 })).status).toBe(200);
    expect((await postTo('D0LATE', before)).body.channel).toBe('D0LATE');
  });

  it('says it did not recognise a message shortcut it does not have, and starts nothing', async () => {
    const id = unique('shortcut-');
    const opened = slack.callsOf('views.open').length;
    const response = await requests.interaction({
      type: 'message_action',
      callback_id: 'someone_elses_shortcut',
      team: { id: TEAM, domain: 'school' },
      user: { id: 'U0BAD3', username: 'bad3', team_id: TEAM },
      channel: { id: 'C0X', name: 'x' },
      message: { type: 'message', user: 'U0PUPIL', ts: '1700000000.000300', text: 'hello' },
      trigger_id: unique('trigger-'),
      response_url: slack.responseUrl(id),
      token: 'legacy',
    });
    expect(response.status).toBe(200);
    expect((await responseTo(id)).body).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/didn't recognise that button or form/) });
    expect(slack.callsOf('views.open').length).toBe(opened);
    expect(await running.app.directory.getUser(SCHOOL, 'U0BAD3')).toBeUndefined();
  });

  it('answers an unknown button on the Home tab in the DM, without a turn', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const home = { id: 'V0BADHOME', type: 'home', blocks: [] };
    const response = await requests.interaction(blockAction('U0BAD4', { action_id: 'somebody.else', value: '{}' }, { view: home }));
    expect(response.status).toBe(200);
    expect(blocksText((await postTo('D0BAD4', before)).body.blocks)).toMatch(/didn't recognise that button/);
    expect(await running.app.directory.getUser(SCHOOL, 'U0BAD4')).toBeUndefined();
  });

  describe('a report form whose payload comes back malformed', () => {
    let form: Json;
    let draftId: string;
    const draft = async () => (await running.app.store.get<{ values: Record<string, unknown> }>({ kind: 'incident-draft', school: SCHOOL, id: draftId }))?.data;
    const cases = async () => (await running.app.store.list('case', SCHOOL)).length;

    beforeAll(async () => {
      const opened = slack.callsOf('views.open').length;
      await requests.command({ command: '/report-incident', text: '', user_id: 'U0MALFORMED', channel_id: 'C0STAFFROOM', response_url: slack.responseUrl(unique('report-')), trigger_id: unique('trigger-') });
      form = { ...(await slack.waitFor('views.open', opened + 1))[opened]!.body.view, id: 'V0MALFORMED', hash: 'h1' };
      draftId = JSON.parse(form.private_metadata).data.draftId;
    });

    const complete = {
      category: 'cyberbullying',
      riskAreas: ['conduct'],
      childAtRisk: 'false',
      occurredAt: '2026-11-20 10:30',
      place: 'Year 8 group chat',
      details: 'Unkind messages in a group chat.',
      actionsTaken: 'Spoke to the pupils.',
      dslToldInPerson: 'false',
    };

    it.each([
      ['a private_metadata that does not parse', (view: Json) => ({ ...view, private_metadata: '{"v":1,"kind":"form.incident","data":' })],
      ['a private_metadata pointing at another route', (view: Json) => ({ ...view, private_metadata: JSON.stringify({ v: 1, kind: 'form.incident', data: { draftId: 'x' } }) })],
      ['state values that are not an object', (view: Json) => ({ ...view, state: { values: 'everything' } })],
      ['a state value with two elements in one block', (view: Json) => ({ ...view, state: { values: { ...view.state.values, details: { text: { type: 'plain_text_input', value: 'a' }, other: { type: 'plain_text_input', value: 'b' } } } } })],
    ])('refuses a submission with %s: the modal says so, no case, the draft untouched', async (_what, tamper) => {
      const casesBefore = await cases();
      const draftBefore = await draft();
      const payload = viewSubmission('U0MALFORMED', form, complete);
      const response = await requests.interaction({ ...payload, view: tamper(payload.view) });
      expect(response.status).toBe(200);
      const body = await response.json();
      expect(body.response_action).toBe('update');
      expect(blocksText(body.view.blocks)).toMatch(/couldn't read that form .* nothing was saved/);
      expect(await cases()).toBe(casesBefore);
      expect(await draft()).toEqual(draftBefore);
    });

    it('keeps the modal open with every required field flagged when the state has no values at all; no case', async () => {
      const casesBefore = await cases();
      const payload = viewSubmission('U0MALFORMED', form, {});
      const response = await requests.interaction({ ...payload, view: { ...payload.view, state: undefined } });
      const body = await response.json();
      expect(body.response_action).toBe('errors');
      expect(Object.keys(body.errors)).toEqual(expect.arrayContaining(['category', 'details']));
      expect(await cases()).toBe(casesBefore);
      expect((await running.app.store.list<{ reporter: string }>('case', SCHOOL)).filter((r) => r.data.reporter === 'U0MALFORMED')).toEqual([]);
    });

    it('answers a button inside the modal whose private_metadata does not parse with "Not sent", changing nothing', async () => {
      const updates = slack.callsOf('views.update').length;
      const draftBefore = await draft();
      const view = { ...form, private_metadata: 'not json', state: { values: viewState(form, {}) } };
      await requests.interaction(blockAction('U0MALFORMED', button(form.blocks, 'Cancel report'), { view }));
      const [update] = (await slack.waitFor('views.update', updates + 1)).slice(updates);
      expect(update!.body.view.title.text).toBe('Not sent');
      expect(blocksText(update!.body.view.blocks)).toMatch(/couldn't read that form/);
      expect(await draft()).toEqual(draftBefore);
      expect(draftBefore).toBeDefined();
    });

    it('still takes the untampered form afterwards: one case', async () => {
      const before = await cases();
      const response = await requests.interaction(viewSubmission('U0MALFORMED', form, complete));
      expect(response.status).toBe(200);
      for (let i = 0; i < 100 && (await cases()) === before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await cases()).toBe(before + 1);
    });
  });

  it('sent nothing Slack would have rejected in this whole file', () => {
    expect(slack.rejected).toEqual([]);
  });

  it('logged no error, and no message text, token or report content, in this whole file', () => {
    const lines = logs.raw();
    expect(logs.lines().filter((line) => line.level >= 50)).toEqual([]);
    for (const secret of ['christmas party', 'Friday 18 December', 'phones in class', 'meet me after school', 'Unkind messages', 'xoxb-test', signingSecret]) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});
