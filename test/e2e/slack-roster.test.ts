/**
 * The staff directory filled from a Slack workspace: its first signed request (here a team_join
 * event) starts a users.list sync off the request path (paginated with the cursor, a 429 waited out),
 * team_join and user_change are applied as they come, bots and Slackbot never become staff, a
 * deactivated account is marked as left with its roles kept, and an alert then reaches a member
 * who never wrote to the bot.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSlackUsers, slackMemberFrom } from '../../src/adapters/slack/roster.ts';
import type { UserRecord } from '../../src/bot/directory.ts';
import { DeliveryError } from '../../src/delivery/types.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { blocksText, slackRequests, startFakeSlack, type FakeSlack, type SlackRequests } from '../helpers/fake-slack.ts';
import { eventually } from '../helpers/eventually.ts';

const TEAM = 'T0ROSTER';
const SCHOOL = 'slack-roster';
const signingSecret = randomBytes(16).toString('hex');
let slack: FakeSlack;
let running: RunningApp;
let requests: SlackRequests;

const person = (id: string, realName: string, extra: Record<string, unknown> = {}) => ({ id, team_id: TEAM, name: realName.toLowerCase().replace(/\s/g, '.'), real_name: realName, deleted: false, is_bot: false, profile: { real_name: realName, display_name: realName.split(' ')[0] }, ...extra });

async function users(): Promise<Map<string, UserRecord>> {
  return new Map((await running.app.directory.listUsers(SCHOOL)).map((user) => [user.id, user]));
}

beforeAll(async () => {
  slack = await startFakeSlack();
  slack.usersPageSize = 3;
  slack.users = [
    person('U0COORD', 'Cora Coordinator'),
    person('U0DSL', 'Dana Lead'),
    person('U0QUIET', 'Quinn Quiet'),
    { id: 'USLACKBOT', name: 'slackbot', real_name: 'Slackbot', is_bot: false, deleted: false },
    person('B0HELPER', 'Helper Bot', { id: 'U0HELPERBOT', is_bot: true }),
    person('U0GONE', 'Gil Gone', { deleted: true }),
    { name: 'no id at all' },
    person('U0FOURTH', 'Fran Fourth'),
  ];
  running = await startApp({ SLACK_SIGNING_SECRET: signingSecret, SLACK_BOT_TOKEN: 'xoxb-roster', SLACK_API_URL: `${slack.url}/api/` });
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Slack Roster School', slackTeam: TEAM });
  await running.app.directory.grantRole(SCHOOL, 'U0COORD', 'coordinator');
  await running.app.directory.grantRole(SCHOOL, 'U0DSL', 'dsl');
  await running.app.directory.grantRole(SCHOOL, 'U0GONE', 'governor');
  requests = slackRequests(running.url, signingSecret, TEAM);
});
afterAll(async () => {
  await running?.stop();
  await slack?.close();
});

describe('the first request from a single-token workspace', () => {
  it('acknowledges a team_join at once, adds the joiner, and reads users.list through every page and a 429', async () => {
    slack.failNext('users.list', { status: 429, retryAfter: 0 });
    const response = await requests.event({ type: 'team_join', user: person('U0JOIN', 'Jo Joiner') });
    expect(response.status).toBe(200);
    const found = await eventually('the roster in the directory', async () => {
      const all = await users();
      return ['U0JOIN', 'U0QUIET', 'U0FOURTH'].every((id) => all.has(id)) && all;
    });
    const calls = slack.callsOf('users.list');
    // The throttled first page is asked again (no cursor), then the pages follow the cursor.
    expect(calls.map((call) => call.body.cursor ?? null)).toEqual([null, null, expect.any(String), expect.any(String)]);
    expect(calls.every((call) => call.authorization === 'Bearer xoxb-roster' && String(call.body.limit) === '200')).toBe(true);
    expect(found.get('U0JOIN')).toMatchObject({ platform: 'slack', name: 'Jo Joiner', roles: [], reference: { teamId: TEAM, userId: 'U0JOIN' } });
    expect(found.get('U0QUIET')).toMatchObject({ platform: 'slack', name: 'Quinn Quiet', reference: { teamId: TEAM, userId: 'U0QUIET' } });
  });

  it('keeps roles granted before the sync, and never adds bots or Slackbot', async () => {
    const all = await users();
    expect(all.get('U0DSL')).toMatchObject({ roles: ['dsl'], platform: 'slack', name: 'Dana Lead', reference: { teamId: TEAM, userId: 'U0DSL' } });
    expect([...all.keys()].sort()).toEqual(['U0COORD', 'U0DSL', 'U0FOURTH', 'U0GONE', 'U0JOIN', 'U0QUIET']);
  });

  it('marks a deactivated account as left, keeping its roles and giving it no way to be messaged', async () => {
    const gone = (await users()).get('U0GONE')!;
    expect(gone.leftAt).toBeDefined();
    expect(gone.roles).toEqual(['governor']);
    expect(gone.reference).toBeUndefined();
  });
});

describe('membership events', () => {
  it('marks a member deactivated by user_change as left', async () => {
    const deactivated = person('U0FOURTH', 'Fran Fourth', { deleted: true });
    slack.users = slack.users.map((user) => (user.id === 'U0FOURTH' ? deactivated : user));
    const response = await requests.event({ type: 'user_change', user: deactivated });
    expect(response.status).toBe(200);
    await eventually('marked as left', async () => (await users()).get('U0FOURTH')?.leftAt);
  });

  it('ignores a malformed user in an event', async () => {
    const before = (await users()).size;
    const response = await requests.event({ type: 'team_join', user: { id: 42, real_name: 'Not A Person' } });
    expect(response.status).toBe(200);
    const again = await requests.event({ type: 'team_join', user: person('U0SECOND', 'Sam Second') });
    expect(again.status).toBe(200);
    // Whatever order the two are handled in, only the well-formed one adds anyone.
    await eventually('the second joiner', async () => (await users()).has('U0SECOND'));
    expect((await users()).size).toBe(before + 1);
  });
});

describe('a coordinator in Slack', () => {
  async function dm(user: string, text: string): Promise<string> {
    const before = slack.callsOf('chat.postMessage').length;
    await requests.event({ type: 'message', channel_type: 'im', channel: `D${user}`, user, text, ts: `${Date.now() / 1000}` });
    // The answer in the person's DM (an alert's own messages to others may come first).
    const post = await eventually('the answer', async () => slack.callsOf('chat.postMessage').slice(before).find((call) => call.body.channel === `D${user}`));
    return `${post.body.text ?? ''}\n${blocksText(post.body.blocks)}`;
  }

  it('syncs staff on request, reading users.list again with the install\'s token', async () => {
    slack.users.push(person('U0LATE', 'Lee Late'));
    const reply = await dm('U0COORD', 'sync staff');
    expect(reply).toMatch(/synced from 1 team or workspace: 1 added, \d+ updated, \d+ unchanged/);
    expect((await users()).get('U0LATE')).toMatchObject({ name: 'Lee Late' });
    const audit = (await running.app.store.list<{ actor: string; action: string; outcome: string }>('audit', SCHOOL)).map((r) => r.data);
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'U0COORD', action: 'roster.sync', outcome: 'ok' }));
  });

  it('reaches a member who never wrote to the bot with an alert, and not those who left', async () => {
    const reply = await dm('U0COORD', 'alert critical Do not open the "parcel delivery" texts.');
    expect(reply).toMatch(/going to \d+ people/);
    const posts = await eventually('the alert in the quiet member\'s DM', async () => {
      const found = slack.callsOf('chat.postMessage').filter((call) => call.body.channel === 'D0QUIET' && /Critical e-safety alert/.test(blocksText(call.body.blocks)));
      return found.length > 0 && found;
    });
    expect(posts).toHaveLength(1);
    expect(slack.callsOf('conversations.open').some((call) => call.body.users === 'U0GONE' || call.body.users === 'U0FOURTH')).toBe(false);
  });
});

describe('reading users.list', () => {
  it('waits for Slack\'s Retry-After on a 429 and goes on from the same cursor', async () => {
    const waits: number[] = [];
    slack.users = [person('U0A', 'A Person'), person('U0B', 'B Person'), person('U0C', 'C Person'), person('U0D', 'D Person')];
    slack.usersPageSize = 2;
    const client = new (await import('@slack/web-api')).WebClient(undefined, { slackApiUrl: `${slack.url}/api/`, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
    const first = slack.callsOf('users.list').length;
    // The second page is throttled: the read waits 3 s (as told) and asks for that page again.
    const read = readSlackUsers({ client, token: 'xoxb-roster', wait: async (ms) => {
      waits.push(ms);
    } }, { teamId: TEAM, access: {} });
    // Script the failure after the first page is asked for (a real 429 comes mid-read).
    await slack.waitFor('users.list', first + 1);
    slack.failNext('users.list', { status: 429, retryAfter: 3 });
    const { members } = await read;
    expect(members.map((m) => m.id)).toEqual(['U0A', 'U0B', 'U0C', 'U0D']);
    expect(waits).toEqual([3000]);
    const cursors = slack.callsOf('users.list').slice(first).map((call) => call.body.cursor ?? null);
    expect(cursors).toEqual([null, expect.any(String), cursors[1]]);
  });

  it('gives up, throttled, rather than wait out rate limits for more than a minute in one read', async () => {
    const waits: number[] = [];
    const client = new (await import('@slack/web-api')).WebClient(undefined, { slackApiUrl: `${slack.url}/api/`, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
    slack.failNext('users.list', { status: 429, retryAfter: 40 });
    slack.failNext('users.list', { status: 429, retryAfter: 40 });
    const error = await readSlackUsers({ client, token: 'xoxb-roster', wait: async (ms) => void waits.push(ms) }, { teamId: TEAM, access: {} }).catch((e: unknown) => e);
    // 40 s waited; another 40 would pass the minute: the sync job tries again later instead.
    expect(waits).toEqual([40_000]);
    expect(error).toBeInstanceOf(DeliveryError);
    expect((error as DeliveryError).kind).toBe('throttled');
  });

  it('gives up with a classified error when Slack refuses for good', async () => {
    const client = new (await import('@slack/web-api')).WebClient(undefined, { slackApiUrl: `${slack.url}/api/`, retryConfig: { retries: 0 } });
    slack.failNext('users.list', { error: 'missing_scope' });
    const error = await readSlackUsers({ client, token: 'xoxb-roster' }, { teamId: TEAM, access: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeliveryError);
    expect((error as DeliveryError).kind).toBe('permanent');
  });

  it('turns a Slack user into a member, or nothing for bots', () => {
    expect(slackMemberFrom(person('U0X', 'Xan Example'), { teamId: TEAM, enterpriseId: 'E0ORG' })).toEqual({ id: 'U0X', name: 'Xan Example', reference: { teamId: TEAM, enterpriseId: 'E0ORG', userId: 'U0X' } });
    expect(slackMemberFrom({ id: 'USLACKBOT', real_name: 'Slackbot' }, { teamId: TEAM })).toBeUndefined();
    expect(slackMemberFrom(person('U0BOT', 'A Bot', { is_bot: true }), { teamId: TEAM })).toBeUndefined();
    expect(slackMemberFrom('nonsense', { teamId: TEAM })).toBeUndefined();
  });
});
