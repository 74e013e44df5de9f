/**
 * Issue 6's equivalent of issue 5, must have 4, on Slack over HTTP: the coordinator's alert progress
 * card in their DM is refreshed by the durable job as chat.update of the same message (channel and
 * ts from chat.postMessage), "Refresh" updates it in place too, and a deleted message
 * (message_not_found) is replaced by a new post that later updates land on.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { blockActionPayload, blocksText, slackRequests, startFakeSlack, type FakeSlack, type SlackCall, type SlackRequests } from '../helpers/fake-slack.ts';
import { FAST } from '../delivery/helpers.ts';

const TEAM = 'T0LIVE';
const SCHOOL = 'live-school';
const COORDINATOR = 'U0COORD';
const STAFF = ['U0STAFFA', 'U0STAFFB', 'U0STAFFC'];
const dmOf = (user: string) => `D${user.slice(1)}`;
const signingSecret = randomBytes(16).toString('hex');
const quick = { perSecond: 2000, burst: 50, perConversationPerSecond: 100, perConversationBurst: 100 };

type Json = Record<string, any>;
let running: RunningApp;
let slack: FakeSlack;
let requests: SlackRequests;

async function until<T>(find: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A direct message to the bot; resolves with the bot's reply in that DM. */
async function dm(user: string, text: string): Promise<SlackCall> {
  const before = slack.callsOf('chat.postMessage').length;
  const response = await requests.event({ type: 'message', channel_type: 'im', channel: dmOf(user), user, text, ts: `${Date.now() / 1000}` });
  expect(response.status).toBe(200);
  return until(() => slack.callsOf('chat.postMessage').slice(before).find((call) => call.body.channel === dmOf(user)), `a reply in ${dmOf(user)}`);
}

const button = (blocks: Json[], title: string): Json => {
  const found = blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements).find((b: Json) => b.text.text === title);
  expect(found, `button "${title}"`).toBeDefined();
  return found;
};

/** Presses a button on a message in the person's DM, as Slack sends it. */
async function press(user: string, message: SlackCall, title: string): Promise<void> {
  const pressed = button(message.body.blocks, title);
  const payload = blockActionPayload(TEAM, user, pressed, { channel: dmOf(user), responseUrl: slack.responseUrl(`resp-${randomBytes(4).toString('hex')}`) });
  expect((await requests.interaction(payload)).status).toBe(200);
}

const progressPostsSince = (from: number) => slack.callsOf('chat.postMessage').slice(from).filter((c) => c.body.channel === dmOf(COORDINATOR) && /Delivered/.test(blocksText(c.body.blocks)));
const updatesOf = (ts: string) => slack.callsOf('chat.update').filter((c) => c.body.channel === dmOf(COORDINATOR) && c.body.ts === ts);

beforeAll(async () => {
  slack = await startFakeSlack();
  running = await startApp(
    { SLACK_SIGNING_SECRET: signingSecret, SLACK_BOT_TOKEN: 'xoxb-live', SLACK_API_URL: `${slack.url}/api/`, PLAYGROUND_ENABLED: 'false' },
    { delivery: { outbox: { ...FAST, rates: { slack: quick } }, jobs: { pollMs: 100, retryBaseMs: 100 }, progress: { refreshMs: 150, maxMs: 120_000 } } },
  );
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Live School', slackTeam: TEAM });
  requests = slackRequests(running.url, signingSecret, TEAM);
  for (const user of [COORDINATOR, ...STAFF]) await dm(user, 'hello');
  await running.app.directory.grantRole(SCHOOL, COORDINATOR, 'coordinator');
});
afterAll(async () => {
  await running?.stop();
  await slack?.close();
});

describe('the alert progress card on Slack', () => {
  let alertId: string;
  let status: { ts: string };
  let fromStatus: number;
  const alertPostTo = (user: string) => slack.callsOf('chat.postMessage').find((c) => c.body.channel === dmOf(user) && /Critical e-safety alert/.test(blocksText(c.body.blocks)));

  it('is posted in the coordinator\'s DM for "alert status", and its ts remembered', async () => {
    const reply = await dm(COORDINATOR, 'alert critical Someone is phoning staff pretending to be from the bank. Hang up.');
    alertId = /alert-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}/.exec(blocksText(reply.body.blocks))![0];
    await until(async () => ((await running.app.outbox.progress(SCHOOL, alertId)).delivered === STAFF.length ? true : undefined), 'the alert to reach every member of staff');

    fromStatus = slack.callsOf('chat.postMessage').length;
    const posted = await dm(COORDINATOR, `alert status ${alertId}`);
    expect(blocksText(posted.body.blocks)).toMatch(/Read and acknowledged\W+0/);
    button(posted.body.blocks, 'Refresh');
    const ref = await until(() => running.app.store.get<{ message: { channel: string; ts: string } }>({ kind: 'message-ref', school: SCHOOL, id: `${COORDINATOR}:alert-progress-${alertId}` }), 'the message reference');
    expect(ref.data.message.channel).toBe(dmOf(COORDINATOR));
    status = { ts: ref.data.message.ts };
  });

  it('is updated with chat.update by the refresh job when someone acknowledges, not posted again', async () => {
    await press(STAFF[0]!, alertPostTo(STAFF[0]!)!, 'I have read this');
    const update = await until(() => updatesOf(status.ts).find((c) => /Read and acknowledged\W+1/.test(blocksText(c.body.blocks))), 'chat.update to 1 acknowledged');
    expect(blocksText(update.body.blocks)).toMatch(/Delivered\W+3 of 3/);
    expect(progressPostsSince(fromStatus)).toHaveLength(1);
  });

  it('is updated in place by its Refresh button', async () => {
    await press(STAFF[1]!, alertPostTo(STAFF[1]!)!, 'I have read this');
    // The refresh job shows the second acknowledgement first. Otherwise either the job or Refresh
    // could make the update awaited below, and the other, still on its way, would reach the message
    // the next test deletes and be posted anew in place of the card that test expects.
    await until(() => updatesOf(status.ts).find((c) => /Read and acknowledged\W+2/.test(blocksText(c.body.blocks))), "the refresh job's chat.update to 2 acknowledged");
    const before = slack.callsOf('chat.update').length;
    await press(COORDINATOR, progressPostsSince(fromStatus)[0]!, 'Refresh');
    await until(() => slack.callsOf('chat.update').slice(before).find((c) => c.body.ts === status.ts && /Read and acknowledged\W+2/.test(blocksText(c.body.blocks))), 'chat.update to 2 acknowledged');
    expect(progressPostsSince(fromStatus)).toHaveLength(1);
  });

  it('is posted anew when the message is gone (message_not_found), and later updates land on the new one', async () => {
    slack.deleteMessage(dmOf(COORDINATOR), status.ts);
    const from = slack.callsOf('chat.postMessage').length;
    await press(STAFF[2]!, alertPostTo(STAFF[2]!)!, 'I have read this');
    const reposted = await until(() => progressPostsSince(from).find((c) => /Read and acknowledged\W+3/.test(blocksText(c.body.blocks))), 'a new progress card');
    expect(slack.callsOf('chat.update').some((c) => c.body.ts === status.ts && /Read and acknowledged\W+3/.test(blocksText(c.body.blocks)))).toBe(true);
    const ref = await until(async () => {
      const current = await running.app.store.get<{ message: { ts: string } }>({ kind: 'message-ref', school: SCHOOL, id: `${COORDINATOR}:alert-progress-${alertId}` });
      return current && current.data.message.ts !== status.ts ? current : undefined;
    }, 'the new message remembered');
    const before = slack.callsOf('chat.update').length;
    await press(COORDINATOR, reposted, 'Refresh');
    await until(() => slack.callsOf('chat.update').slice(before).find((c) => c.body.ts === ref.data.message.ts), 'chat.update of the new message');
    expect(progressPostsSince(from)).toHaveLength(1);
  });
});
