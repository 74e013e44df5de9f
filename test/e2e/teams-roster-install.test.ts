/**
 * Two ways into the staff directory that a team's install event does not cover, over real HTTP
 * against the loopback connector:
 * - a person installs the app for themselves (personal scope): they are recorded with their personal
 *   chat, welcomed once with the help, and later reached there without a conversation being created;
 * - a team the bot joined before its tenant was registered: the first message from one of its
 *   channels records it as a candidate (read by nobody); a coordinator's "sync staff" typed there
 *   confirms it as a staff team and reads its roster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserRecord } from '../../src/bot/directory.ts';
import { Roster, type RosterSource } from '../../src/bot/roster.ts';
import { silentLogger } from '../../src/logger.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';
import { memoryLog, type MemoryLog } from '../helpers/memory-log.ts';
import { eventually } from '../helpers/eventually.ts';

const SCHOOL = 'install-school';
const TENANT = 'tenant-install';
let running: RunningApp;
let connector: FakeConnector;
let logs: MemoryLog;

const account = (aad: string, name: string) => ({ id: `29:${aad}`, aadObjectId: aad, name, userRole: 'user', tenantId: TENANT });

/** What Teams posts when a person adds the app for themselves (both events come, in either order). */
function personalInstall(options: { user: string; name?: string; type: 'conversationUpdate' | 'installationUpdate'; tenant?: string; aad?: boolean }) {
  const tenant = options.tenant ?? TENANT;
  return {
    type: options.type,
    id: `f:${Math.random()}`,
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl: connector.url,
    from: { id: `29:${options.user}`, ...(options.aad === false ? {} : { aadObjectId: options.user }), ...(options.name ? { name: options.name } : {}) },
    recipient: { id: '28:bot', name: 'esafety-bot' },
    conversation: { id: `a:chat-${options.user}`, conversationType: 'personal', tenantId: tenant },
    channelData: { tenant: { id: tenant } },
    ...(options.type === 'conversationUpdate' ? { membersAdded: [{ id: '28:bot' }] } : { action: 'add' }),
  };
}

function channelMessage(options: { team: string; user: string; text: string; tenant?: string }) {
  const tenant = options.tenant ?? TENANT;
  return {
    ...messageActivity({ serviceUrl: connector.url, userId: options.user, userName: `Name ${options.user}`, tenantId: tenant, conversationType: 'channel', conversationId: `${options.team};messageid=${Date.now()}`, text: options.text }),
    channelData: { tenant: { id: tenant }, team: { id: options.team, name: 'Staff' }, channel: { id: options.team } },
  };
}

async function post(body: unknown): Promise<void> {
  const response = await running.post('/api/messages', body);
  expect(response.status).toBe(200);
}

const inConversation = (id: string) => connector.activities.filter((a) => a.conversationId === id);
const helpCards = (id: string) => inConversation(id).filter((a) => /Ask me anything about our policies/.test(cardText(cardOf(a.activity))));

async function users(school = SCHOOL): Promise<Map<string, UserRecord>> {
  return new Map((await running.app.directory.listUsers(school)).map((user) => [user.id, user]));
}

beforeAll(async () => {
  connector = await startFakeConnector();
  logs = memoryLog('info');
  running = await startApp({}, { log: logs.log });
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Install School', teamsTenant: TENANT });
  await running.app.directory.grantRole(SCHOOL, 'coord-i', 'coordinator');
});
afterAll(async () => {
  await running?.stop();
  await connector?.close();
});

describe('a personal install', () => {
  it('records the person with their personal chat and welcomes them once with the help', async () => {
    await post(personalInstall({ user: 'pi-1', name: 'Priya Install', type: 'conversationUpdate' }));
    await post(personalInstall({ user: 'pi-1', name: 'Priya Install', type: 'installationUpdate' }));
    const record = (await users()).get('pi-1')!;
    expect(record).toMatchObject({ platform: 'teams', name: 'Priya Install', roles: [] });
    expect(record.reference).toMatchObject({ channelId: 'msteams', serviceUrl: connector.url, conversation: { id: 'a:chat-pi-1', conversationType: 'personal' }, user: { id: '29:pi-1', aadObjectId: 'pi-1' }, bot: { id: '28:bot' } });
    // Teams sends both events for one install: one welcome.
    expect(helpCards('a:chat-pi-1')).toHaveLength(1);
    expect(logs.raw().join('\n')).not.toMatch(/Priya Install/);
  });

  it('writes nothing more when the person then writes to the bot (the same reference a message gives)', async () => {
    const before = await running.app.directory.getUser(SCHOOL, 'pi-1');
    const sent = connector.activities.length;
    await post(messageActivity({ serviceUrl: connector.url, userId: 'pi-1', userName: 'Priya Install', tenantId: TENANT, conversationId: 'a:chat-pi-1', text: 'whoami' }));
    await connector.waitFor(sent + 1);
    expect((await running.app.store.get({ kind: 'user', school: SCHOOL, id: 'pi-1' }))?.etag).toBe(before!.etag);
  });

  it('replaces a roster reference with the personal chat, keeping roles, first-seen and name', async () => {
    await new Roster({ directory: running.app.directory, store: running.app.store, log: silentLogger() }).apply(SCHOOL, 'teams', [{ id: 'pi-2', name: 'Rory Roster', reference: { kind: 'teams-roster', serviceUrl: connector.url, tenantId: TENANT, user: { id: '29:pi-2', aadObjectId: 'pi-2' }, bot: { id: '28:bot' } } }]);
    await running.app.directory.grantRole(SCHOOL, 'pi-2', 'dsl');
    const before = (await users()).get('pi-2')!;
    // Only the installationUpdate this time: recorded, not welcomed.
    await post(personalInstall({ user: 'pi-2', type: 'installationUpdate' }));
    const after = (await users()).get('pi-2')!;
    expect(after).toMatchObject({ roles: ['dsl'], firstSeen: before.firstSeen, name: 'Rory Roster' });
    expect(after.reference).toMatchObject({ conversation: { id: 'a:chat-pi-2' } });
    expect(inConversation('a:chat-pi-2')).toEqual([]);
  });

  it('is where an alert reaches them: no conversation is created', async () => {
    const sent = connector.activities.length;
    await post(messageActivity({ serviceUrl: connector.url, userId: 'coord-i', userName: 'Name coord-i', tenantId: TENANT, text: 'alert Please update your devices tonight.' }));
    await connector.waitFor(sent + 1);
    for (const user of ['pi-1', 'pi-2']) await eventually(`the alert to ${user}`, async () => inConversation(`a:chat-${user}`).some((a) => /E-safety update/.test(cardText(cardOf(a.activity)))));
    expect(connector.created).toEqual([]);
  });

  it('stores nothing for a tenant that is not registered, and says the school is not set up', async () => {
    await post(personalInstall({ user: 'stranger', name: 'Sam Stranger', type: 'installationUpdate', tenant: 'tenant-nowhere' }));
    await post(personalInstall({ user: 'stranger', name: 'Sam Stranger', type: 'conversationUpdate', tenant: 'tenant-nowhere' }));
    const [reply] = await eventually('the answer', async () => inConversation('a:chat-stranger').length > 0 && inConversation('a:chat-stranger'));
    expect(reply!.activity.text).toMatch(/not set up yet/);
    for (const school of await running.app.directory.listSchools()) expect(await running.app.directory.getUser(school.id, 'stranger')).toBeUndefined();
  });

  it('ignores an install without the person\'s Entra id, and a removal, answering 200', async () => {
    await post(personalInstall({ user: 'no-aad', type: 'installationUpdate', aad: false }));
    await post({ ...personalInstall({ user: 'pi-1', type: 'installationUpdate' }), action: 'remove' });
    expect(await running.app.directory.getUser(SCHOOL, '29:no-aad')).toBeUndefined();
    expect(await running.app.directory.getUser(SCHOOL, 'no-aad')).toBeUndefined();
    // The person's record stays as it was: a personal uninstall removes nobody.
    expect((await users()).get('pi-1')?.reference).toMatchObject({ conversation: { id: 'a:chat-pi-1' } });
  });
});

describe('a team the bot joined before its tenant was registered', () => {
  const LATE_TENANT = 'tenant-late';
  const LATE_SCHOOL = 'late-school';
  const TEAM = '19:late-staff@thread.tacv2';
  const OTHER_TEAM = '19:late-second@thread.tacv2';
  const source = (team: string) => running.app.store.get<RosterSource>({ kind: 'roster-source', school: LATE_SCHOOL, id: `teams:${team}` });

  it('is not followed while the tenant is not registered', async () => {
    connector.rosters.set(TEAM, [account('late-1', 'Lee Late'), account('late-2', 'Lou Later')]);
    await post({
      type: 'conversationUpdate', id: 'f:late', channelId: 'msteams', serviceUrl: connector.url,
      from: { id: '29:x', aadObjectId: 'x' }, recipient: { id: '28:bot' },
      conversation: { id: TEAM, conversationType: 'channel', isGroup: true, tenantId: LATE_TENANT },
      channelData: { team: { id: TEAM }, tenant: { id: LATE_TENANT } }, membersAdded: [{ id: '28:bot' }],
    });
    await post(channelMessage({ team: TEAM, user: 'late-1', text: 'can pupils use phones in class?', tenant: LATE_TENANT }));
    expect(await running.app.directory.getSchool(LATE_SCHOOL)).toBeUndefined();
    expect(connector.rosterReads.filter((read) => read.teamId === TEAM)).toEqual([]);
  });

  it('is recorded as a candidate, its roster not read, after the first message from one of its channels once registered', async () => {
    await running.app.directory.upsertSchool({ id: LATE_SCHOOL, name: 'Late School', teamsTenant: LATE_TENANT });
    const sent = connector.activities.length;
    await post(channelMessage({ team: TEAM, user: 'late-1', text: 'can pupils use phones in class?', tenant: LATE_TENANT }));
    // The question is answered as usual.
    await connector.waitFor(sent + 1);
    const recorded = await eventually('the team recorded', async () => (await source(TEAM))?.data);
    expect(recorded).toMatchObject({ platform: 'teams', teamId: TEAM, access: { serviceUrl: connector.url, tenantId: LATE_TENANT, botId: '28:bot' } });
    expect(recorded.confirmedAt).toBeUndefined();
    expect(connector.rosterReads.filter((read) => read.teamId === TEAM)).toEqual([]);
    expect((await users(LATE_SCHOOL)).has('late-2')).toBe(false);
  });

  it('later messages from its channels change nothing and read no roster (their cost: test/e2e/turn-cost.test.ts)', async () => {
    const reads = connector.rosterReads.length;
    const { etag } = (await source(TEAM))!;
    for (let i = 0; i < 3; i++) await post(channelMessage({ team: TEAM, user: 'late-2', text: 'help', tenant: LATE_TENANT }));
    expect((await source(TEAM))!.etag).toBe(etag);
    expect(connector.rosterReads.length).toBe(reads);
  });

  it('"sync staff" typed by a coordinator in a channel of a team not followed yet confirms and reads that team in the same turn', async () => {
    connector.rosters.set(OTHER_TEAM, [account('late-3', 'Max Second')]);
    await running.app.directory.grantRole(LATE_SCHOOL, 'late-coord', 'coordinator');
    const message = channelMessage({ team: OTHER_TEAM, user: 'late-coord', text: 'sync staff', tenant: LATE_TENANT });
    const sent = connector.activities.length;
    await post(message);
    const reply = (await connector.waitFor(sent + 1)).slice(sent).find((a) => a.conversationId.startsWith(`${OTHER_TEAM};`))!;
    // The other team, never confirmed, is not read.
    expect(reply.activity.text).toMatch(/synced from 1 team or workspace: 1 added/);
    expect((await users(LATE_SCHOOL)).get('late-3')).toMatchObject({ name: 'Max Second' });
    expect((await source(OTHER_TEAM))?.data).toMatchObject({ confirmedBy: 'late-coord' });
    expect((await source(OTHER_TEAM))?.data.removedAt).toBeUndefined();
    expect(connector.rosterReads.filter((read) => read.teamId === TEAM)).toEqual([]);
  });

  it('"sync staff" in the first team\'s channel confirms and reads it too', async () => {
    const sent = connector.activities.length;
    await post(channelMessage({ team: TEAM, user: 'late-coord', text: 'sync staff', tenant: LATE_TENANT }));
    const reply = (await connector.waitFor(sent + 1)).slice(sent).find((a) => a.conversationId.startsWith(`${TEAM};`))!;
    // Both members wrote in its channels before, so they are there already: the roster names them.
    expect(reply.activity.text).toMatch(/synced from 2 teams or workspaces: 0 added, 2 updated/);
    expect((await users(LATE_SCHOOL)).get('late-2')).toMatchObject({ name: 'Lou Later', roles: [] });
    expect((await source(TEAM))?.data.lastSync).toBeDefined();
  });
});
