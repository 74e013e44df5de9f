/**
 * Proactive messages to Slack (what the Notifier and the outbox call): a direct message through
 * conversations.open and chat.postMessage, and every refusal classified as a DeliveryError the
 * outbox can act on. The Web API client never retries by itself: a 429 is one call, thrown at once
 * with its Retry-After, so the outbox pauses the school's sending.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSlackChannel, type SlackChannel } from '../../src/adapters/slack/slack-channel.ts';
import { escalationCard } from '../../src/bot/features/qa.ts';
import { card, text } from '../../src/bot/reply.ts';
import { DeliveryError } from '../../src/delivery/types.ts';
import { silentLogger } from '../../src/logger.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { blockKitProblems, startFakeSlack, type FakeSlack } from '../helpers/fake-slack.ts';

const TEAM = 'T0SEND';
const SCHOOL = 'send-school';
let running: RunningApp;
let slack: FakeSlack;
let channel: SlackChannel;

beforeAll(async () => {
  slack = await startFakeSlack();
  running = await startApp({ SLACK_SIGNING_SECRET: randomBytes(16).toString('hex'), SLACK_BOT_TOKEN: 'xoxb-send', SLACK_API_URL: `${slack.url}/api/` });
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Send School', slackTeam: TEAM });
  // The sender main.ts registers with the Notifier, built the same way over the same core.
  channel = createSlackChannel({ settings: running.settings.slack!, publicUrl: running.settings.publicUrl, bot: running.app.bot, store: running.app.store, directory: running.app.directory, log: silentLogger() });
});
afterAll(async () => {
  await running?.stop();
  await slack?.close();
});

const hello = [card({ kind: 'test.alert', title: 'An alert', blocks: [{ type: 'text', text: 'Something needs you.' }] }), text('And a line of text.')];

async function failure(work: Promise<unknown>): Promise<DeliveryError> {
  const error = await work.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(DeliveryError);
  return error as DeliveryError;
}

describe('the Slack proactive sender', () => {
  it('opens the DM (conversations.open) and posts the replies as one message (chat.postMessage)', async () => {
    const before = slack.calls.length;
    await channel.send({ teamId: TEAM, userId: 'U0ALICE' }, hello);
    const calls = slack.calls.slice(before);
    expect(calls.map((c) => c.method)).toEqual(['conversations.open', 'chat.postMessage']);
    expect(calls[0]!.body.users).toBe('U0ALICE');
    expect(calls[1]!.body.channel).toBe('D0ALICE');
    expect(calls[1]!.authorization).toBe('Bearer xoxb-send');
    expect(calls[1]!.body.blocks.map((b: { type: string }) => b.type)).toEqual(['header', 'section', 'divider', 'section']);
    expect(blockKitProblems(calls[1]!.body.blocks, 'message')).toEqual([]);
  });

  it('opens a DM once, and not at all when the reference has the channel', async () => {
    const before = slack.calls.length;
    await channel.send({ teamId: TEAM, userId: 'U0ALICE' }, hello);
    await channel.send({ teamId: TEAM, userId: 'U0BOB', channel: 'D0BOBDM' }, hello);
    expect(slack.calls.slice(before).map((c) => [c.method, c.body.channel])).toEqual([
      ['chat.postMessage', 'D0ALICE'],
      ['chat.postMessage', 'D0BOBDM'],
    ]);
  });

  it('sends a form as its text with an "Open form" button, the form kept for the recipient', async () => {
    const before = slack.calls.length;
    const escalation = escalationCard({ id: 'esc-9', questionId: 'q-9', question: 'Is there a policy on smart watches?', askedBy: 'U0T', askedAt: new Date().toISOString(), status: 'open' });
    await channel.send({ teamId: TEAM, userId: 'U0COORD', channel: 'D0COORD' }, [card(escalation)]);
    const [post] = slack.calls.slice(before);
    const buttons = post!.body.blocks.filter((b: { type: string }) => b.type === 'actions').flatMap((b: { elements: unknown[] }) => b.elements);
    expect(buttons.map((b: { text: { text: string } }) => b.text.text)).toEqual(['Open form']);
    const stored = await running.app.store.list<{ userId: string; card: { kind: string } }>('slack-form', SCHOOL);
    expect(stored.map((r) => [r.data.userId, r.data.card.kind])).toEqual([['U0COORD', 'qa.escalation']]);
  });

  it('throws throttled with Retry-After for a 429, after one call (the client does not retry)', async () => {
    slack.failNext('chat.postMessage', { status: 429, retryAfter: 7 });
    const before = slack.callsOf('chat.postMessage').length;
    const error = await failure(channel.send({ teamId: TEAM, userId: 'U0ALICE', channel: 'D0ALICE' }, hello));
    expect(error).toMatchObject({ kind: 'throttled', retryAfterMs: 7000, status: 429 });
    expect(slack.callsOf('chat.postMessage').length - before).toBe(1);
  });

  it.each([
    ['channel_not_found', 'permanent'],
    ['user_not_found', 'permanent'],
    ['account_inactive', 'permanent'],
    ['not_in_channel', 'permanent'],
    ['is_archived', 'permanent'],
    ['cannot_dm_bot', 'permanent'],
    ['token_revoked', 'permanent'],
    ['invalid_auth', 'permanent'],
    ['team_access_not_granted', 'permanent'],
    ['invalid_blocks', 'permanent'],
    ['internal_error', 'transient'],
    ['fatal_error', 'transient'],
    ['service_unavailable', 'transient'],
    ['some_new_error_slack_adds', 'transient'],
    ['ratelimited', 'throttled'],
  ])('classifies chat.postMessage answering %s as %s (src/delivery/classify.ts decides), after one call', async (code, kind) => {
    slack.failNext('chat.postMessage', { error: code });
    const before = slack.callsOf('chat.postMessage').length;
    const error = await failure(channel.send({ teamId: TEAM, userId: 'U0ALICE', channel: 'D0ALICE' }, hello));
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(new RegExp(`^Slack .*\\(${code}\\)$`));
    expect(slack.callsOf('chat.postMessage').length - before).toBe(1);
  });

  it.each([
    [503, 'transient'],
    [500, 'transient'],
    [404, 'permanent'],
    // Was transient before the classification was unified: Slack will refuse the same request again.
    [400, 'permanent'],
    [413, 'permanent'],
  ])('classifies an HTTP %i from Slack as %s, after one call (the client does not retry)', async (status, kind) => {
    slack.failNext('chat.postMessage', { status });
    const before = slack.callsOf('chat.postMessage').length;
    const error = await failure(channel.send({ teamId: TEAM, userId: 'U0ALICE', channel: 'D0ALICE' }, hello));
    expect(error).toMatchObject({ kind, status });
    expect(slack.callsOf('chat.postMessage').length - before).toBe(1);
  });

  it('classifies a refused conversations.open (the person left) as permanent', async () => {
    slack.failNext('conversations.open', { error: 'user_not_found' });
    expect((await failure(channel.send({ teamId: TEAM, userId: 'U0GONE' }, hello))).kind).toBe('permanent');
  });

  it('refuses a reference it cannot use, and a send without a bot token, as permanent', async () => {
    expect((await failure(channel.send({ conversationId: 'a:teams-reference' }, hello))).message).toMatch(/reference is not usable/);
    const tokenless = createSlackChannel({ settings: { ...running.settings.slack!, botToken: undefined }, publicUrl: running.settings.publicUrl, bot: running.app.bot, store: running.app.store, directory: running.app.directory, log: silentLogger() });
    const error = await failure(tokenless.send({ teamId: TEAM, userId: 'U0ALICE', channel: 'D0ALICE' }, hello));
    expect(error).toMatchObject({ kind: 'permanent', message: expect.stringMatching(/no bot token/) });
  });

  it('classifies a Slack that cannot be reached as transient', async () => {
    const unreachable = createSlackChannel({ settings: { ...running.settings.slack!, apiUrl: 'http://127.0.0.1:9/api/' }, publicUrl: running.settings.publicUrl, bot: running.app.bot, store: running.app.store, directory: running.app.directory, log: silentLogger() });
    const error = await failure(unreachable.send({ teamId: TEAM, userId: 'U0ALICE', channel: 'D0ALICE' }, hello));
    expect(error.kind).toBe('transient');
    expect(error.message).toBe('Slack could not be reached (slack_webapi_request_error)');
  });

  it('is the sender the Notifier uses for people on Slack', async () => {
    await running.app.directory.noteUserSeen(SCHOOL, { id: 'U0NOTE', platform: 'slack', reference: { teamId: TEAM, userId: 'U0NOTE', channel: 'D0NOTE' } });
    const before = slack.callsOf('chat.postMessage').length;
    const result = await running.app.notifier.sendToUserId(SCHOOL, 'U0NOTE', hello);
    expect(result).toEqual({ userId: 'U0NOTE', delivered: true });
    expect(slack.callsOf('chat.postMessage').slice(before).map((c) => c.body.channel)).toEqual(['D0NOTE']);
  });
});

describe('through the outbox', () => {
  it('honours Slack\'s 429: the school\'s sending pauses for Retry-After, then the message goes, once', async () => {
    await running.app.directory.noteUserSeen(SCHOOL, { id: 'U0OUT', platform: 'slack', reference: { teamId: TEAM, userId: 'U0OUT', channel: 'D0OUT' } });
    slack.failNext('chat.postMessage', { status: 429, retryAfter: 2 });
    const before = slack.callsOf('chat.postMessage').length;
    const { broadcastId } = await running.app.outbox.enqueue(SCHOOL, [{ recipient: 'U0OUT', replies: hello }]);
    const deadline = Date.now() + 20_000;
    let posts = slack.callsOf('chat.postMessage').slice(before);
    while (posts.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      posts = slack.callsOf('chat.postMessage').slice(before);
    }
    expect(posts.map((c) => c.body.channel)).toEqual(['D0OUT', 'D0OUT']);
    const times = slack.calls.filter((c) => posts.includes(c)).map((c) => c.at);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1900);
    for (let i = 0; i < 100 && (await running.app.outbox.progress(SCHOOL, broadcastId)).delivered < 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await running.app.outbox.progress(SCHOOL, broadcastId)).toMatchObject({ total: 1, delivered: 1, failed: 0 });
  }, 30_000);
});
