/**
 * The app removed from a Slack workspace (`app_uninstalled`, or `tokens_revoked` for the bot token),
 * over real HTTP against the loopback Slack: the installation is deleted, the directory stops
 * following the workspace (no sync runs or is scheduled, a late event does not follow it again),
 * its people keep their records and roles, and messages to them fail at once as permanent with the
 * reason, without calling Slack. An install through OAuth follows the workspace again.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installationKey, StoreInstallationStore } from '../../src/adapters/slack/installation-store.ts';
import type { UserRecord } from '../../src/bot/directory.ts';
import { syncJobId, type RosterSource } from '../../src/bot/roster.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { oauthSlackSettings, slackRequests, startFakeSlack, type FakeSlack } from '../helpers/fake-slack.ts';
import { eventually } from '../helpers/eventually.ts';

const signingSecret = randomBytes(16).toString('hex');
let slack: FakeSlack;

const person = (id: string, realName: string) => ({ id, name: realName.toLowerCase().replace(/\s/g, '.'), real_name: realName, deleted: false, is_bot: false, profile: { real_name: realName } });

const sourceOf = (running: RunningApp, school: string, team: string) => running.app.store.get<RosterSource>({ kind: 'roster-source', school, id: `slack:${team}` });

/** Sends a message to each person through the outbox and waits until every item is final. */
async function sendToAll(running: RunningApp, school: string, people: string[]) {
  const { broadcastId } = await running.app.outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: [{ type: 'text' as const, text: 'A reminder about passwords.' }] })));
  return eventually('every item final', async () => {
    const progress = await running.app.outbox.progress(school, broadcastId);
    return progress.pending + progress.inflight === 0 && progress;
  });
}

beforeAll(async () => {
  slack = await startFakeSlack();
  slack.users = [person('U0COORD', 'Cora Coordinator'), person('U0QUIET', 'Quinn Quiet')];
});
afterAll(async () => {
  await slack?.close();
});

describe('a single-token workspace where the app is uninstalled', () => {
  const TEAM = 'T0SINGLE';
  const SCHOOL = 'single-uninstall';
  let running: RunningApp;

  beforeAll(async () => {
    running = await startApp({ SLACK_SIGNING_SECRET: signingSecret, SLACK_BOT_TOKEN: 'xoxb-single', SLACK_API_URL: `${slack.url}/api/` });
    await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Single School', slackTeam: TEAM });
    await running.app.directory.grantRole(SCHOOL, 'U0COORD', 'coordinator');
    const requests = slackRequests(running.url, signingSecret, TEAM);
    expect((await requests.event({ type: 'team_join', user: person('U0JOIN', 'Jo Joiner') })).status).toBe(200);
    await eventually('the workspace synced', async () => (await sourceOf(running, SCHOOL, TEAM))?.data.lastSync);
  });
  afterAll(async () => {
    await running?.stop();
  });

  it('ignores tokens_revoked for user tokens only: the bot can still work there', async () => {
    const requests = slackRequests(running.url, signingSecret, TEAM);
    expect((await requests.event({ type: 'tokens_revoked', tokens: { oauth: ['U0COORD'] } })).status).toBe(200);
    expect((await sourceOf(running, SCHOOL, TEAM))?.data.removedAt).toBeUndefined();
    const progress = await sendToAll(running, SCHOOL, ['U0QUIET']);
    expect(progress).toMatchObject({ delivered: 1, failed: 0 });
  });

  it('stops following the workspace and cancels its pending sync, keeping everyone and their roles', async () => {
    // A sync due later (as a burst of events would leave one): the removal cancels it.
    await running.app.jobs.schedule({ school: SCHOOL, id: syncJobId(`slack:${TEAM}`), kind: 'roster.sync', runAt: new Date(Date.now() + 3_600_000), payload: { source: `slack:${TEAM}` } });
    const requests = slackRequests(running.url, signingSecret, TEAM);
    expect((await requests.event({ type: 'app_uninstalled' })).status).toBe(200);
    const source = await eventually('the source marked removed', async () => {
      const current = (await sourceOf(running, SCHOOL, TEAM))?.data;
      return current?.removedAt !== undefined && current;
    });
    expect(source.lastSync).toBeDefined();
    expect(await running.app.store.get({ kind: 'job', school: SCHOOL, id: syncJobId(`slack:${TEAM}`) })).toBeUndefined();
    const users = new Map((await running.app.directory.listUsers(SCHOOL)).map((user: UserRecord) => [user.id, user]));
    expect([...users.keys()].sort()).toEqual(['U0COORD', 'U0JOIN', 'U0QUIET']);
    expect(users.get('U0COORD')!.roles).toEqual(['coordinator']);
  });

  it('does not follow it again on a late event, nor read users.list', async () => {
    const lists = slack.callsOf('users.list').length;
    const requests = slackRequests(running.url, signingSecret, TEAM);
    expect((await requests.event({ type: 'user_change', user: person('U0QUIET', 'Quinn Renamed') })).status).toBe(200);
    // Events are handled after the acknowledgement; this one should change nothing, so give it time to (not) act.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await sourceOf(running, SCHOOL, TEAM))?.data.removedAt).toBeDefined();
    expect(await running.app.store.get({ kind: 'job', school: SCHOOL, id: syncJobId(`slack:${TEAM}`) })).toBeUndefined();
    expect(slack.callsOf('users.list').length).toBe(lists);
    expect((await running.app.directory.getUser(SCHOOL, 'U0QUIET'))?.data.name).toBe('Quinn Quiet');
  });

  it('fails messages to its people at once as permanent, with the reason, without calling Slack', async () => {
    const calls = slack.calls.length;
    const progress = await sendToAll(running, SCHOOL, ['U0QUIET', 'U0JOIN']);
    expect(progress).toMatchObject({ delivered: 0, failed: 2 });
    expect(progress.failures).toEqual(expect.arrayContaining([{ recipient: 'U0QUIET', reason: expect.stringMatching(/uninstalled from this workspace/) }]));
    expect(slack.calls.slice(calls)).toEqual([]);
  });
});

describe('an OAuth workspace whose bot token is revoked, then installed again', () => {
  const TEAM = 'T0OAUTHGONE';
  const SCHOOL = 'oauth-uninstall';
  let running: RunningApp;

  beforeAll(async () => {
    running = await startApp(oauthSlackSettings(slack, signingSecret));
    await running.app.directory.upsertSchool({ id: SCHOOL, name: 'OAuth School', slackTeam: TEAM });
    await new StoreInstallationStore(running.app.store).storeInstallation({
      team: { id: TEAM, name: 'OAuth School' },
      enterprise: undefined,
      user: { id: 'U0ADMIN', token: undefined, scopes: undefined },
      bot: { token: 'xoxb-oauth-first', scopes: ['chat:write', 'users:read'], id: 'B0', userId: 'U0BOT' },
      isEnterpriseInstall: false,
      authVersion: 'v2',
    });
    const requests = slackRequests(running.url, signingSecret, TEAM);
    expect((await requests.event({ type: 'team_join', user: person('U0JOIN', 'Jo Joiner') })).status).toBe(200);
    await eventually('the workspace synced', async () => (await sourceOf(running, SCHOOL, TEAM))?.data.lastSync);
  });
  afterAll(async () => {
    await running?.stop();
  });

  it('deletes the installation and stops following the workspace', async () => {
    const requests = slackRequests(running.url, signingSecret, TEAM);
    expect((await requests.event({ type: 'tokens_revoked', tokens: { bot: ['U0BOT'] } })).status).toBe(200);
    await eventually('the installation deleted', async () => !(await running.app.store.get(installationKey({ teamId: TEAM }))));
    await eventually('the source marked removed', async () => (await sourceOf(running, SCHOOL, TEAM))?.data.removedAt);
    expect((await running.app.directory.getUser(SCHOOL, 'U0QUIET'))?.data).toMatchObject({ name: 'Quinn Quiet' });
  });

  it('fails messages there as permanent, without calling Slack', async () => {
    const calls = slack.calls.length;
    const progress = await sendToAll(running, SCHOOL, ['U0QUIET']);
    expect(progress.failures).toEqual([{ recipient: 'U0QUIET', reason: expect.stringMatching(/uninstalled|not installed/) }]);
    expect(slack.calls.slice(calls)).toEqual([]);
  });

  it('follows the workspace again when it is installed again, and sends with the new token', async () => {
    slack.oauthAccess = { ...slack.oauthAccess, access_token: 'xoxb-oauth-second', team: { id: TEAM, name: 'OAuth School' } };
    const installPage = await fetch(`${running.url}/slack/install`);
    const state = new URL(/href="(https:\/\/slack\.com[^"]+)"/.exec(await installPage.text())![1]!.replace(/&amp;/g, '&')).searchParams.get('state')!;
    const cookie = installPage.headers.get('set-cookie')!.split(';')[0]!;
    const lists = slack.callsOf('users.list').length;
    const redirect = await fetch(`${running.url}/slack/oauth_redirect?code=again&state=${encodeURIComponent(state)}`, { headers: { cookie } });
    expect(redirect.status).toBe(200);
    await eventually('the source followed again', async () => {
      const source = (await sourceOf(running, SCHOOL, TEAM))?.data;
      return source && !source.removedAt && source;
    });
    const [list] = (await slack.waitFor('users.list', lists + 1)).slice(lists);
    expect(list!.authorization).toBe('Bearer xoxb-oauth-second');
    const progress = await sendToAll(running, SCHOOL, ['U0QUIET']);
    expect(progress).toMatchObject({ delivered: 1, failed: 0 });
  });
});
