/**
 * Issue 6 on Slack, the scenarios test/e2e/acknowledgements.test.ts runs on Teams: a published
 * policy reaches every member of staff in their DM, is opened through the signed link and accepted
 * with a signed block_actions (from the message or from the App Home tab), and a coordinator's
 * critical alert reaches everyone through the outbox, through a 429 and a person who has left.
 * Bolt and the server are real; the Web API is the loopback fake. Scenarios build on each other.
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Acknowledgement } from '../../src/bot/features/acknowledgements/service.ts';
import { parsePolicy } from '../../src/policies/markdown.ts';
import { loadPolicyDirectory } from '../../src/policies/load.ts';
import { GLOBAL_PARTITION } from '../../src/store/store.ts';
import { repoRoot, startApp, type RunningApp } from '../helpers/app.ts';
import { memoryLog } from '../helpers/memory-log.ts';
import { blockActionPayload, blocksText, slackRequests, startFakeSlack, type FakeSlack, type SlackCall, type SlackRequests } from '../helpers/fake-slack.ts';

const TEAM = 'T0ACKS';
const SCHOOL = 'ack-school';
const DOC = 'staff-acceptable-use';
const COORDINATOR = 'U0COORD';
const STAFF = ['U0STAFFA', 'U0STAFFB', 'U0STAFFC', 'U0STAFFD'] as const;
const [ALEX, BEA, CAL, DEE] = STAFF;
const signingSecret = randomBytes(16).toString('hex');

let running: RunningApp;
let slack: FakeSlack;
let requests: SlackRequests;
const logs = memoryLog('info');

type Json = Record<string, any>;
const dmOf = (user: string) => `D${user.slice(1)}`;
let sequence = 0;
const unique = (prefix: string) => `${prefix}${++sequence}`;

async function importNewVersion(extra: string): Promise<void> {
  const raw = await readFile(path.join(repoRoot, 'policies', `${DOC}.md`), 'utf8');
  const changed = raw.replace('## Scope', `## Scope\n\n${extra}\n`).replace(/^version: .*$/m, `version: 2026.${++sequence + 100}`);
  await running.app.library.import(SCHOOL, [parsePolicy(`${DOC}.md`, changed)], 'test');
}

/** Waits for a chat.postMessage into `channel` after the first `since`, whose text matches. */
async function postTo(channel: string, since: number, pattern: RegExp = /./, timeoutMs = 15_000): Promise<SlackCall> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = slack.callsOf('chat.postMessage').slice(since).find((call) => call.ok && call.body.channel === channel && pattern.test(blocksText(call.body.blocks)));
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no chat.postMessage to ${channel} matching ${pattern}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A direct message from `user`; resolves with the bot's reply in that DM. */
async function dm(user: string, text: string): Promise<SlackCall> {
  const before = slack.callsOf('chat.postMessage').length;
  const response = await requests.event({ type: 'message', channel_type: 'im', channel: dmOf(user), user, text, ts: `${Date.now() / 1000}` });
  expect(response.status).toBe(200);
  return postTo(dmOf(user), before);
}

/** The POST to response URL `id`, once it has arrived (the fake's own wait). */
const responseTo = (id: string) => slack.responseTo(id);

const buttonsOf = (blocks: Json[]): Json[] => blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements);
const button = (blocks: Json[], title: string, nth = 0): Json => {
  const found = buttonsOf(blocks).filter((b) => b.text.text === title)[nth];
  expect(found, `button "${title}" (there are: ${buttonsOf(blocks).map((b) => b.text.text).join(', ')})`).toBeDefined();
  return found!;
};

/** A button pressed on a message in the person's DM (with its response_url), or on their Home tab. */
function press(user: string, pressed: Json, where: { responseId: string } | { home: Json }): Json {
  if ('home' in where) return blockActionPayload(TEAM, user, pressed, { view: where.home });
  return blockActionPayload(TEAM, user, pressed, { channel: dmOf(user), responseUrl: slack.responseUrl(where.responseId) });
}

/** Presses a button on a DM message; resolves with what the bot answered through the response_url. */
async function pressInDm(user: string, pressed: Json): Promise<string> {
  const id = unique('resp-');
  const response = await requests.interaction(press(user, pressed, { responseId: id }));
  expect(response.status).toBe(200);
  return blocksText((await responseTo(id)).body.blocks);
}

/** Opens the Home tab; resolves with the published view. */
async function openHome(user: string, teamId = TEAM): Promise<Json> {
  const before = slack.callsOf('views.publish').length;
  const response = await requests.event({ type: 'app_home_opened', user, channel: dmOf(user), tab: 'home', event_ts: `${Date.now() / 1000}` }, { teamId });
  expect(response.status).toBe(200);
  const [call] = (await slack.waitFor('views.publish', before + 1, 10_000)).slice(before);
  expect(call!.body.user_id).toBe(user);
  return { ...call!.body.view, id: unique('V0HOME') };
}

/** The signed "Read the policy" link, on this server. */
const readUrl = (link: Json): string => String(link.url).replace(/^https?:\/\/[^/]+/, running.url);

const acks = async () => (await running.app.store.list<Acknowledgement>('ack', SCHOOL)).map((r) => r.data);

beforeAll(async () => {
  slack = await startFakeSlack();
  running = await startApp({ SLACK_SIGNING_SECRET: signingSecret, SLACK_BOT_TOKEN: 'xoxb-acks', SLACK_API_URL: `${slack.url}/api/`, LOG_LEVEL: 'info' }, { log: logs.log });
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Ack School', slackTeam: TEAM });
  await running.app.library.import(SCHOOL, (await loadPolicyDirectory(path.join(repoRoot, 'policies'))).documents, 'test');
  await running.app.directory.grantRole(SCHOOL, COORDINATOR, 'coordinator');
  requests = slackRequests(running.url, signingSecret, TEAM);
  // Everyone has talked to the bot once: their DM is their reference for proactive messages.
  for (const user of [COORDINATOR, ...STAFF]) await dm(user, 'whoami');
  await importNewVersion('All staff must also complete the annual online safety quiz.');
});
afterAll(async () => {
  await running?.stop();
  await slack?.close();
});

describe('a policy to read and accept, on Slack', () => {
  const requestsFor = new Map<string, SlackCall>();

  it('reaches every member of staff in their DM (chat.postMessage), with the signed link and the accept button', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const reply = await dm(COORDINATOR, `policies publish ${DOC} to all due 2099-12-31`);
    expect(blocksText(reply.body.blocks)).toMatch(/being asked to read and accept/);
    for (const user of STAFF) {
      const post = await postTo(dmOf(user), before, /Please read and accept/);
      expect(blocksText(post.body.blocks)).toMatch(/Changed: Scope/);
      expect(buttonsOf(post.body.blocks).map((b) => b.text.text)).toEqual(['Read the policy', 'I have read and accept']);
      expect(button(post.body.blocks, 'Read the policy').url).toMatch(new RegExp(`/read/${SCHOOL}/${DOC}/[^/]+/${user}/[^/]+$`));
      requestsFor.set(user, post);
    }
  });

  it('refuses an acceptance before the policy was opened, with a clear message, recording nothing', async () => {
    const answer = await pressInDm(ALEX, button(requestsFor.get(ALEX)!.body.blocks, 'I have read and accept'));
    expect(answer).toMatch(/Please open the policy first/);
    expect(await acks()).toEqual([]);
  });

  it('serves the policy through the signed link, and not through one altered for someone else', async () => {
    const url = readUrl(button(requestsFor.get(ALEX)!.body.blocks, 'Read the policy'));
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('annual online safety quiz');
    expect((await fetch(url.replace(`/${ALEX}/`, `/${BEA}/`))).status).toBe(404);
  });

  it('records one acceptance, on platform slack, for exactly that version, even when clicked twice at once', async () => {
    const accept = button(requestsFor.get(ALEX)!.body.blocks, 'I have read and accept');
    const answers = await Promise.all([pressInDm(ALEX, accept), pressInDm(ALEX, accept)]);
    expect(answers.some((a) => /your acceptance of .* is recorded/.test(a))).toBe(true);
    for (const answer of answers) expect(answer).toMatch(/is recorded|already accepted/);
    const recorded = (await acks()).filter((a) => a.userId === ALEX);
    expect(recorded).toHaveLength(1);
    const entry = (await running.app.library.list(SCHOOL)).find((e) => e.docId === DOC)!;
    expect(recorded[0]).toMatchObject({ platform: 'slack', docId: DOC, hash: entry.hash, version: entry.version });
    expect(await pressInDm(ALEX, accept)).toMatch(/already accepted/);
  });
});

describe('the App Home tab', () => {
  let home: Json;

  it('shows what the person has to read and accept, with the signed link and the accept button, then the help and the shortcuts', async () => {
    home = await openHome(BEA);
    expect(home.type).toBe('home');
    const shown = blocksText(home.blocks);
    expect(shown).toMatch(/Please read and accept: Staff Acceptable Use Policy/);
    expect(shown).toContain('Ack School: our e-safety and acceptable use policies, in chat');
    expect(shown).toContain('/aup your question');
    expect(buttonsOf(home.blocks).map((b) => b.text.text)).toEqual(expect.arrayContaining(['Read the policy', 'I have read and accept', 'Report an incident']));
    expect(button(home.blocks, 'Read the policy').url).toMatch(new RegExp(`/${BEA}/[^/]+$`));
    expect(slack.rejected).toEqual([]);
  });

  it('shows nothing to accept to someone who has accepted', async () => {
    const shown = blocksText((await openHome(ALEX)).blocks);
    expect(shown).not.toMatch(/Please read and accept/);
    expect(shown).toContain('/report-incident');
  });

  it('refuses an acceptance from the Home tab before opening, answering in the DM', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const response = await requests.interaction(press(BEA, button(home.blocks, 'I have read and accept'), { home }));
    expect(response.status).toBe(200);
    await postTo(dmOf(BEA), before, /Please open the policy first/);
    expect((await acks()).filter((a) => a.userId === BEA)).toEqual([]);
  });

  it('accepts from the Home tab: the thanks come to the DM and the Home is republished without the item', async () => {
    expect((await fetch(readUrl(button(home.blocks, 'Read the policy')))).status).toBe(200);
    const posts = slack.callsOf('chat.postMessage').length;
    const publishes = slack.callsOf('views.publish').length;
    const response = await requests.interaction(press(BEA, button(home.blocks, 'I have read and accept'), { home }));
    expect(response.status).toBe(200);
    expect(blocksText((await postTo(dmOf(BEA), posts, /acceptance of .* is recorded/)).body.blocks)).toMatch(/Staff Acceptable Use Policy/);
    const [republished] = (await slack.waitFor('views.publish', publishes + 1)).slice(publishes);
    expect(republished!.body.user_id).toBe(BEA);
    const shown = blocksText(republished!.body.view.blocks);
    expect(shown).not.toMatch(/Please read and accept/);
    expect(shown).toContain('/report-incident');
    expect((await acks()).filter((a) => a.userId === BEA)).toEqual([expect.objectContaining({ platform: 'slack' })]);
  });

  it('starts an incident report from its button (the form opens as a modal)', async () => {
    const opened = slack.callsOf('views.open').length;
    await requests.interaction(press(CAL, button((await openHome(CAL)).blocks, 'Report an incident'), { home: { type: 'home', id: 'V0CALHOME' } }));
    const [call] = (await slack.waitFor('views.open', opened + 1)).slice(opened);
    expect(call!.body.view).toMatchObject({ type: 'modal', callback_id: 'esafety.form' });
    expect(blocksText(call!.body.view.blocks)).toMatch(/What happened/i);
  });

  it('tells a workspace linked to no school so, politely, running no turn and storing nothing', async () => {
    const opens = slack.callsOf('conversations.open').length;
    const view = await openHome('U0STRANGER', 'T0NOWHERE');
    expect(blocksText(view.blocks)).toMatch(/not linked to a school yet/);
    expect(buttonsOf(view.blocks)).toEqual([]);
    expect(slack.callsOf('conversations.open').slice(opens)).toEqual([]);
    for (const school of [SCHOOL, GLOBAL_PARTITION]) expect((await running.app.store.list('user', school)).filter((r) => r.id.includes('U0STRANGER'))).toEqual([]);
    expect(await running.app.directory.schoolForTenant('slack', 'T0NOWHERE')).toBeUndefined();
  });
});

describe('a superseded version', () => {
  it('gets a clear message, and nothing is recorded for the old version', async () => {
    const oldRequest = slack.callsOf('chat.postMessage').find((c) => c.body.channel === dmOf(CAL) && /Please read and accept/.test(blocksText(c.body.blocks)))!;
    await importNewVersion('Staff must report lost badges the same day.');
    expect(await pressInDm(CAL, button(oldRequest.body.blocks, 'I have read and accept'))).toMatch(/has a newer version since this request\. Nothing was recorded/);
    expect((await acks()).filter((a) => a.userId === CAL)).toEqual([]);
  });
});

describe('a critical alert to every member of staff on Slack', () => {
  it('reaches everyone in their DM exactly once, through a 429 (the school pauses for Retry-After), and records a person who has left as failed, never retried', async () => {
    const gone = dmOf(DEE);
    const coordinatorDm = dmOf(COORDINATOR);
    // Slack's answers to the alert's sends: one 429 (Retry-After: 1) for whoever is first, and account_inactive for Dee.
    slack.failNext('chat.postMessage', { status: 429, retryAfter: 1, when: (body) => body.channel !== coordinatorDm && body.channel !== gone });
    slack.failNext('chat.postMessage', { error: 'account_inactive', when: (body) => body.channel === gone });
    const stats = running.app.outbox.stats();
    const before = slack.callsOf('chat.postMessage').length;

    const reply = await dm(COORDINATOR, 'alert critical Fake "IT support" emails are asking for passwords. Do not reply.');
    const alertId = /alert-\S+/.exec(blocksText(reply.body.blocks))![0].replace(/\.$/, '');
    const deadline = Date.now() + 30_000;
    let progress = await running.app.outbox.progress(SCHOOL, alertId);
    while (progress.pending + progress.inflight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      progress = await running.app.outbox.progress(SCHOOL, alertId);
    }
    expect(progress).toMatchObject({ total: STAFF.length, delivered: STAFF.length - 1, failed: 1, pending: 0, inflight: 0 });
    expect(progress.failures).toEqual([{ recipient: DEE, reason: 'Slack refused the message (account_inactive)' }]);

    const alertPosts = slack.callsOf('chat.postMessage').slice(before).filter((c) => c.body.channel !== coordinatorDm);
    for (const user of STAFF.filter((u) => u !== DEE)) {
      const delivered = alertPosts.filter((c) => c.body.channel === dmOf(user) && c.ok);
      expect(delivered, `${user} got the alert once`).toHaveLength(1);
      expect(blocksText(delivered[0]!.body.blocks)).toMatch(/Critical e-safety alert[\s\S]*Fake "IT support" emails/);
      expect(button(delivered[0]!.body.blocks, 'I have read this')).toBeDefined();
    }
    // Dee: one attempt, refused, not retried.
    expect(alertPosts.filter((c) => c.body.channel === gone).map((c) => c.ok)).toEqual([false]);
    // The throttled person's message went again only after Retry-After, once.
    const throttled = alertPosts.find((c) => !c.ok && c.body.channel !== gone)!;
    const resent = alertPosts.filter((c) => c.body.channel === throttled.body.channel);
    expect(resent.map((c) => c.ok)).toEqual([false, true]);
    expect(resent[1]!.at - resent[0]!.at).toBeGreaterThanOrEqual(950);
    const after = running.app.outbox.stats();
    expect(after.throttled - stats.throttled).toBe(1);
    expect(after.pausesStarted - stats.pausesStarted).toBe(1);
  }, 40_000);

  it('records who read it when they press "I have read this"', async () => {
    const post = slack.callsOf('chat.postMessage').find((c) => c.ok && c.body.channel === dmOf(ALEX) && /Critical e-safety alert/.test(blocksText(c.body.blocks)))!;
    expect(await pressInDm(ALEX, button(post.body.blocks, 'I have read this'))).toMatch(/recorded that you have read the alert/);
    expect(await running.app.store.list('alert-read', SCHOOL)).toHaveLength(1);
  });
});

describe('in this whole file', () => {
  it('sent nothing Slack would have rejected, and logged no error', () => {
    expect(slack.rejected).toEqual([]);
    expect(logs.lines().filter((line) => line.level >= 50)).toEqual([]);
    for (const secret of ['IT support', 'xoxb-acks', signingSecret]) expect(logs.raw().filter((line) => line.includes(secret))).toEqual([]);
  });
});
