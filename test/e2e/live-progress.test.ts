/**
 * Issue 5, must have 4, on Teams over HTTP: the coordinator's progress card updates in place. The
 * card `alert status` posts is refreshed by a durable job through the outbox as a PUT of the same
 * activity (not a new message), "Refresh" updates it in place too, and a message the coordinator
 * deleted is replaced by a new one that later updates land on. The acknowledgement progress card
 * likewise, with "Remind them now" still working beside "Refresh".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startFakeConnector, type CapturedActivity, type FakeConnector } from '../helpers/fake-connector.ts';
import { FAST } from '../delivery/helpers.ts';

const school = 'default';
const coordinator = 'coord-1';
const staff = ['staff-a', 'staff-b', 'staff-c'];
const conversationOf = (user: string) => `a:conv-${user}`;

let running: RunningApp;
let connector: FakeConnector;

async function say(user: string, body: { text?: string; value?: Record<string, unknown> }): Promise<CapturedActivity[]> {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, userId: user, userName: `Name ${user}`, ...body }));
  expect(response.status).toBe(200);
  // CloudAdapter answers after the turn's replies (posts and updates) were sent.
  return connector.activities.slice(before).filter((a) => a.conversationId === conversationOf(user));
}

async function until<T>(find: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined && found !== false) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Posted cards of `kind`-like content in the coordinator's chat since `from`. */
const progressPosts = (pattern: RegExp, from: number) =>
  connector.activities.slice(from).filter((a) => a.conversationId === conversationOf(coordinator) && pattern.test(cardText(cardOf(a.activity))));

const updatesOf = (activityId: string) => connector.updates.filter((u) => u.activityId === activityId && u.conversationId === conversationOf(coordinator));

function submitData(card: Record<string, any> | undefined, title: string): Record<string, unknown> {
  const action = card?.actions?.find((a: { title: string }) => a.title === title);
  expect(action, `a "${title}" button (there are: ${card?.actions?.map((a: { title: string }) => a.title).join(', ')})`).toBeDefined();
  return action.data;
}

beforeAll(async () => {
  connector = await startFakeConnector();
  running = await startApp(
    { PLAYGROUND_ENABLED: 'false' },
    { delivery: { outbox: FAST, jobs: { pollMs: 100, retryBaseMs: 100 }, progress: { refreshMs: 150, maxMs: 120_000 } } },
  );
  await running.app.directory.grantRole(school, coordinator, 'coordinator');
  for (const user of [coordinator, ...staff]) await say(user, { text: 'hello' });
});
afterAll(async () => {
  await running?.stop();
  await connector?.close();
});

describe('the alert progress card', () => {
  let alertId: string;
  let statusId: string;
  let fromStatus: number;

  it('is posted once for "alert status", with a Refresh button', async () => {
    const from = connector.activities.length;
    const [reply] = await say(coordinator, { text: 'alert critical A fake parcel-delivery text is going round. Do not click the link.' });
    alertId = /alert-\S+/.exec(reply!.activity.text)![0].replace(/\.$/, '');
    await until(async () => (await running.app.outbox.progress(school, alertId)).delivered === staff.length || undefined, 'the alert to reach every member of staff');
    expect(connector.activities.slice(from).filter((a) => /Critical e-safety alert/.test(cardText(cardOf(a.activity))))).toHaveLength(staff.length);

    fromStatus = connector.activities.length;
    const replies = await say(coordinator, { text: `alert status ${alertId}` });
    expect(replies).toHaveLength(1);
    const shown = cardText(cardOf(replies[0]!.activity));
    expect(shown).toContain(`Delivered: ${staff.length} of ${staff.length}`);
    expect(shown).toContain('Read and acknowledged: 0');
    expect(submitData(cardOf(replies[0]!.activity), 'Refresh')).toMatchObject({ route: 'progress.refresh' });
    statusId = connector.idOf(replies[0]!);
    const ref = await running.app.store.get<{ message: string }>({ kind: 'message-ref', school, id: `${coordinator}:alert-progress-${alertId}` });
    expect(ref?.data.message).toBe(statusId);
  });

  it('is updated in place by the refresh job when someone acknowledges: the same activity, no new message', async () => {
    const alert = connector.activities.find((a) => a.conversationId === conversationOf('staff-a') && /Critical e-safety alert/.test(cardText(cardOf(a.activity))))!;
    await say('staff-a', { value: submitData(cardOf(alert.activity), 'I have read this') });
    const update = await until(() => updatesOf(statusId).find((u) => /Read and acknowledged: 1/.test(cardText(cardOf(u.activity)))), 'the card updated to 1 acknowledged');
    expect(cardText(cardOf(update.activity))).toContain(`Delivered: ${staff.length} of ${staff.length}`);
    expect(progressPosts(/Alert alert-/, fromStatus)).toHaveLength(1);
  });

  it('is updated in place by its Refresh button', async () => {
    const alert = connector.activities.find((a) => a.conversationId === conversationOf('staff-b') && /Critical e-safety alert/.test(cardText(cardOf(a.activity))))!;
    await say('staff-b', { value: submitData(cardOf(alert.activity), 'I have read this') });
    const before = updatesOf(statusId).length;
    const replies = await say(coordinator, { value: { route: 'progress.refresh', subject: { type: 'alert', alertId } } });
    expect(replies, 'the Refresh answer is an update, not a new message').toEqual([]);
    const updates = updatesOf(statusId).slice(before);
    expect(updates.length).toBeGreaterThanOrEqual(1);
    expect(cardText(cardOf(updates.at(-1)!.activity))).toContain('Read and acknowledged: 2');
    expect(progressPosts(/Alert alert-/, fromStatus)).toHaveLength(1);
  });

  it('is posted anew when the coordinator deleted it, and later updates land on the new message', async () => {
    connector.deleteActivity(statusId);
    const from = connector.activities.length;
    const alert = connector.activities.find((a) => a.conversationId === conversationOf('staff-c') && /Critical e-safety alert/.test(cardText(cardOf(a.activity))))!;
    await say('staff-c', { value: submitData(cardOf(alert.activity), 'I have read this') });
    const [reposted] = await until(() => {
      const posts = progressPosts(/Read and acknowledged: 3/, from);
      return posts.length ? posts : undefined;
    }, 'a new progress card');
    const newId = connector.idOf(reposted!);
    expect(newId).not.toBe(statusId);
    const ref = await running.app.store.get<{ message: string }>({ kind: 'message-ref', school, id: `${coordinator}:alert-progress-${alertId}` });
    expect(ref?.data.message).toBe(newId);

    const replies = await say(coordinator, { value: { route: 'progress.refresh', subject: { type: 'alert', alertId } } });
    expect(replies).toEqual([]);
    expect(updatesOf(newId).length).toBeGreaterThanOrEqual(1);
    expect(progressPosts(/Alert alert-/, from)).toHaveLength(1);
  });

  it('stops refreshing once everyone has it and has acknowledged it', async () => {
    const jobId = (await running.app.store.list<{ kind: string; payload: { subject: { alertId?: string } } }>('job', school)).find((job) => job.data.payload?.subject?.alertId === alertId);
    expect(jobId, 'no refresh job left for a finished alert').toBeUndefined();
  });

  it('refuses Refresh from someone who is not a coordinator', async () => {
    const [reply] = await say('staff-a', { value: { route: 'progress.refresh', subject: { type: 'alert', alertId } } });
    expect(reply!.activity.text).toMatch(/Only the e-safety coordinator/);
  });
});

describe('the acknowledgement progress card', () => {
  const doc = 'staff-acceptable-use';
  let statusId: string;
  let fromStatus: number;
  let card: Record<string, any>;

  it('is posted for "acks status" with "Remind them now" and "Refresh"', async () => {
    const from = connector.activities.length;
    await say(coordinator, { text: `policies publish ${doc} to all due 2099-12-31` });
    await until(() => connector.activities.slice(from).find((a) => a.conversationId === conversationOf('staff-a') && /Please read and accept/.test(cardText(cardOf(a.activity)))), 'the request to staff-a');
    fromStatus = connector.activities.length;
    const [reply] = await say(coordinator, { text: `acks status ${doc}` });
    card = cardOf(reply!.activity)!;
    expect(cardText(card)).toMatch(/acknowledged 0 of 4/);
    expect(card.actions.map((a: { title: string }) => a.title)).toEqual(['Remind them now', 'Refresh']);
    statusId = connector.idOf(reply!);
  });

  it('is updated in place when a member of staff accepts', async () => {
    const request = connector.activities.find((a) => a.conversationId === conversationOf('staff-a') && /Please read and accept/.test(cardText(cardOf(a.activity))))!;
    const requestCard = cardOf(request.activity)!;
    const link: string = requestCard.actions.find((a: { title: string }) => a.title === 'Read the policy').url;
    expect((await fetch(link.replace(/^https?:\/\/[^/]+/, running.url))).status).toBe(200);
    const [accepted] = await say('staff-a', { value: submitData(requestCard, 'I have read and accept') });
    expect(accepted!.activity.text).toMatch(/is recorded/);
    await until(() => updatesOf(statusId).find((u) => /acknowledged 1 of 4/.test(cardText(cardOf(u.activity)))), 'the card updated to 1 of 4');
    expect(progressPosts(/acknowledged \d+ of \d+/, fromStatus)).toHaveLength(1);
  });

  it('still reminds from "Remind them now"', async () => {
    const [reply] = await say(coordinator, { value: submitData(card, 'Remind them now') });
    expect(reply!.activity.text).toMatch(/Reminding 3 people/);
  });
});
