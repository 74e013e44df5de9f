/**
 * The staff directory filled from a Teams team's roster: the bot added to a team (a real
 * conversationUpdate posted to /api/messages) records it as a candidate and adds nobody (a class
 * team would make pupils staff); a coordinator's "sync staff" in one of its channels confirms it and
 * reads the team's members through the connector's paged members API, adding them without touching
 * anyone's roles or personal chat. A coordinator's alert then reaches a member who never wrote to the bot, through a personal
 * conversation created on the first message and reused after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserRecord } from '../../src/bot/directory.ts';
import { syncJobId, type RosterSource } from '../../src/bot/roster.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';
import { memoryLog, type MemoryLog } from '../helpers/memory-log.ts';
import { eventually } from '../helpers/eventually.ts';

const SCHOOL = 'roster-school';
const TENANT = 'tenant-roster';
const TEAM = '19:staff-room@thread.tacv2';
let running: RunningApp;
let connector: FakeConnector;
let logs: MemoryLog;

const account = (aad: string, name: string) => ({ id: `29:${aad}`, aadObjectId: aad, name, userRole: 'user', tenantId: TENANT });

function conversationUpdate(options: { team: string; tenant?: string; added?: unknown[]; removed?: unknown[]; type?: string; action?: string }) {
  const tenant = options.tenant ?? TENANT;
  return {
    type: options.type ?? 'conversationUpdate',
    id: `f:${Math.random()}`,
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl: connector.url,
    from: { id: '29:coord-r', aadObjectId: 'coord-r' },
    recipient: { id: '28:bot', name: 'esafety-bot' },
    conversation: { id: options.team, conversationType: 'channel', isGroup: true, tenantId: tenant },
    channelData: { eventType: options.removed ? 'teamMemberRemoved' : 'teamMemberAdded', team: { id: options.team, name: 'Staff room' }, tenant: { id: tenant } },
    ...(options.added ? { membersAdded: options.added } : {}),
    ...(options.removed ? { membersRemoved: options.removed } : {}),
    ...(options.action ? { action: options.action } : {}),
  };
}

async function say(user: string, text: string) {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, userId: user, userName: `Name ${user}`, tenantId: TENANT, text }));
  expect(response.status).toBe(200);
  return (await connector.waitFor(before + 1)).slice(before).filter((a) => a.conversationId === `a:conv-${user}`);
}

function channelMessage(options: { team: string; user: string; text: string }) {
  return {
    ...messageActivity({ serviceUrl: connector.url, userId: options.user, userName: `Name ${options.user}`, tenantId: TENANT, conversationType: 'channel', conversationId: `${options.team};messageid=${Math.random()}`, text: options.text }),
    channelData: { tenant: { id: TENANT }, team: { id: options.team, name: 'Staff room' }, channel: { id: options.team } },
  };
}

/** Posts a channel message and returns the bot's reply in that channel. */
async function sayInChannel(team: string, user: string, text: string) {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', channelMessage({ team, user, text }));
  expect(response.status).toBe(200);
  const replies = (await connector.waitFor(before + 1)).slice(before).filter((a) => a.conversationId.startsWith(`${team};`));
  expect(replies).toHaveLength(1);
  return replies[0]!;
}

type AuditEntry = { actor: string; action: string; outcome: string; target?: string; detail?: string };
const auditTrail = async () => (await running.app.store.list<AuditEntry>('audit', SCHOOL)).map((r) => r.data);
const sourceOf = async (team: string) => (await running.app.store.get<RosterSource>({ kind: 'roster-source', school: SCHOOL, id: `teams:${team}` }))?.data;

async function users(): Promise<Map<string, UserRecord>> {
  return new Map((await running.app.directory.listUsers(SCHOOL)).map((user) => [user.id, user]));
}

async function cardsIn(conversationId: string, pattern: RegExp, count: number) {
  return eventually(`${count} cards in ${conversationId}`, async () => {
    const found = connector.activities.filter((a) => a.conversationId === conversationId && pattern.test(cardText(cardOf(a.activity))));
    return found.length >= count && found;
  });
}

beforeAll(async () => {
  connector = await startFakeConnector();
  logs = memoryLog('info');
  running = await startApp({}, { log: logs.log });
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Roster School', teamsTenant: TENANT });
  await running.app.directory.grantRole(SCHOOL, 'coord-r', 'coordinator');
  await running.app.directory.grantRole(SCHOOL, 'dsl-r', 'dsl');
  await say('coord-r', 'hello');
  await say('dsl-r', 'hello');
  connector.rosterPageSize = 4;
  connector.rosters.set(TEAM, [
    // Teams gives a message's sender and the roster the same display name.
    account('coord-r', 'Name coord-r'),
    account('dsl-r', 'Dana Lead'),
    account('new-1', 'Nia Newcomer'),
    account('new-2', 'Omar Quiet'),
    { id: '29:no-aad', name: 'Malformed Member' },
    { name: 'No Id At All', aadObjectId: 'no-id' },
    account('new-3', 'Pat Parttime'),
  ]);
});
afterAll(async () => {
  await running?.stop();
  await connector?.close();
});

describe('the bot added to a team', () => {
  let dslBefore: UserRecord;

  it('records the team as a candidate, adds nobody, reads no roster, and asks in the team for a coordinator\'s confirmation', async () => {
    dslBefore = (await users()).get('dsl-r')!;
    const before = connector.activities.length;
    const response = await running.post('/api/messages', conversationUpdate({ team: TEAM, added: [{ id: '28:bot' }] }));
    expect(response.status).toBe(200);
    await running.post('/api/messages', conversationUpdate({ team: TEAM, type: 'installationUpdate', action: 'add' }));
    const source = await eventually('the team recorded', () => sourceOf(TEAM));
    expect(source.confirmedAt).toBeUndefined();
    // One prompt for the two install events, in the team's conversation.
    const prompts = (await connector.waitFor(before + 1)).slice(before).filter((a) => a.conversationId === TEAM);
    expect(prompts).toHaveLength(1);
    expect(prompts[0]!.activity.text).toMatch(/staff team \(never a class team.*"@esafety-bot sync staff" here/);
    expect(connector.rosterReads).toEqual([]);
    expect([...(await users()).keys()].sort()).toEqual(['coord-r', 'dsl-r']);
  });

  it('adds nobody when members join a team not confirmed, and marks nobody as left when they go', async () => {
    await running.post('/api/messages', conversationUpdate({ team: TEAM, added: [{ id: '29:new-1', aadObjectId: 'new-1' }] }));
    await running.post('/api/messages', conversationUpdate({ team: TEAM, removed: [{ id: '29:dsl-r', aadObjectId: 'dsl-r' }] }));
    expect(connector.rosterReads).toEqual([]);
    const all = await users();
    expect([...all.keys()].sort()).toEqual(['coord-r', 'dsl-r']);
    expect(all.get('dsl-r')!.leftAt).toBeUndefined();
  });

  it('never reads a candidate\'s roster in the durable sync job', async () => {
    // As Roster.scheduleSync asks for it.
    await running.app.jobs.schedule({ school: SCHOOL, id: syncJobId(`teams:${TEAM}`), kind: 'roster.sync', runAt: new Date(), payload: { source: `teams:${TEAM}` } });
    await eventually('the job ran', async () => logs.lines().find((l) => l.msg === 'roster not read: not confirmed as a staff team' && l.school === SCHOOL));
    expect(connector.rosterReads).toEqual([]);
    expect((await users()).size).toBe(2);
  });

  it('is neither confirmed nor read when someone who is not a coordinator types "sync staff" in it (audited)', async () => {
    const reply = await sayInChannel(TEAM, 'dsl-r', 'sync staff');
    expect(reply.activity.text).toMatch(/Only the e-safety coordinator/);
    expect((await sourceOf(TEAM))!.confirmedAt).toBeUndefined();
    expect(connector.rosterReads).toEqual([]);
    expect(await auditTrail()).toContainEqual(expect.objectContaining({ actor: 'dsl-r', action: 'roster.sync', outcome: 'refused' }));
  });

  it('is confirmed (audited, with the coordinator) and read, both pages, when a coordinator types "sync staff" in it', async () => {
    const reply = await sayInChannel(TEAM, 'coord-r', 'sync staff');
    expect(reply.activity.text).toMatch(/synced from 1 team or workspace: 3 added/);
    expect(reply.activity.text).toMatch(/never a class team/);
    expect(await sourceOf(TEAM)).toMatchObject({ confirmedBy: 'coord-r', confirmedAt: expect.any(String) });
    expect(await auditTrail()).toContainEqual(expect.objectContaining({ actor: 'coord-r', action: 'roster.confirm', target: `teams:${TEAM}`, outcome: 'ok' }));
    const found = await users();
    expect(connector.rosterReads.filter((read) => read.teamId === TEAM).map((read) => Boolean(read.continuationToken))).toEqual([false, true]);
    expect(found.get('new-1')).toMatchObject({ platform: 'teams', name: 'Nia Newcomer', roles: [] });
    expect(found.get('new-1')!.reference).toMatchObject({ kind: 'teams-roster', tenantId: TENANT, user: { id: '29:new-1', aadObjectId: 'new-1' }, bot: { id: '28:bot' } });
    // Malformed entries are skipped, not stored under some made-up id.
    expect([...found.keys()].sort()).toEqual(['coord-r', 'dsl-r', 'new-1', 'new-2', 'new-3']);
  });

  it('keeps an existing member\'s roles, personal chat and first-seen date, and takes the roster\'s name', async () => {
    const dsl = (await users()).get('dsl-r')!;
    expect(dsl.roles).toEqual(['dsl']);
    expect(dsl.reference).toEqual(dslBefore.reference);
    expect((dsl.reference as { conversation: { id: string } }).conversation.id).toBe('a:conv-dsl-r');
    expect(dsl.firstSeen).toBe(dslBefore.firstSeen);
    expect(dsl.name).toBe('Dana Lead');
  });

  it('keeps the team on the school, so it can be read again', async () => {
    const sources = (await running.app.store.list<RosterSource>('roster-source', SCHOOL)).map((record) => record.data);
    expect(sources).toEqual([expect.objectContaining({ id: `teams:${TEAM}`, platform: 'teams', teamId: TEAM, access: { serviceUrl: connector.url, tenantId: TENANT, botId: '28:bot' }, confirmedBy: 'coord-r' })]);
    await eventually('the sync recorded', async () => (await running.app.store.get<RosterSource>({ kind: 'roster-source', school: SCHOOL, id: `teams:${TEAM}` }))?.data.lastSync);
  });

  it('logs the sync with counts, never names', async () => {
    const line = logs.lines().find((l) => l.msg === 'roster synced' && l.school === SCHOOL);
    expect(line).toMatchObject({ platform: 'teams', added: 3, skipped: 2 });
    expect(logs.raw().join('\n')).not.toMatch(/Nia Newcomer|Omar Quiet|Malformed Member|Dana Lead/);
  });
});

describe('an alert to a member who never wrote to the bot', () => {
  it('creates the personal chat on the first message and sends into it', async () => {
    await say('coord-r', 'alert critical Phishing emails are going round asking for passwords.');
    const [delivered] = await cardsIn('a:personal-29:new-1', /Critical e-safety alert/, 1);
    expect(cardText(cardOf(delivered!.activity))).toContain('Phishing emails');
    const creates = connector.created.filter((c) => c.parameters.members[0].id === '29:new-1');
    expect(creates).toHaveLength(1);
    expect(creates[0]!.parameters).toMatchObject({ isGroup: false, tenantId: TENANT, bot: { id: '28:bot' }, channelData: { tenant: { id: TENANT } } });
    // The DSL, who has a personal chat, gets it there: no conversation created for them.
    await cardsIn('a:conv-dsl-r', /Critical e-safety alert/, 1);
    expect(connector.created.some((c) => c.parameters.members[0].id === '29:dsl-r')).toBe(false);
  });

  it('keeps the created conversation, and the next alert reuses it (one create only)', async () => {
    const stored = await eventually('the created reference saved', async () => {
      const reference = (await users()).get('new-1')?.reference as { conversation?: { id: string } } | undefined;
      return reference?.conversation?.id === 'a:personal-29:new-1' && reference;
    });
    expect(stored).toMatchObject({ channelId: 'msteams', serviceUrl: connector.url, user: { id: '29:new-1', aadObjectId: 'new-1' } });
    await say('coord-r', 'alert A second reminder about the phishing emails.');
    await cardsIn('a:personal-29:new-1', /E-safety update/, 1);
    expect(connector.created.filter((c) => c.parameters.members[0].id === '29:new-1')).toHaveLength(1);
  });
});

describe('sync staff', () => {
  it('refuses staff who are not coordinators, and audits it', async () => {
    const [reply] = await say('new-2', 'sync staff');
    expect(reply!.activity.text).toMatch(/Only the e-safety coordinator/);
    const audit = (await running.app.store.list<{ actor: string; action: string; outcome: string }>('audit', SCHOOL)).map((r) => r.data);
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'new-2', action: 'roster.sync', outcome: 'refused' }));
  });

  it('re-reads the team from a personal chat and says what changed', async () => {
    connector.rosters.get(TEAM)!.push(account('new-4', 'Quinn Joiner'));
    const [reply] = await say('coord-r', 'sync staff');
    expect(reply!.activity.text).toMatch(/synced from 1 team or workspace: 1 added, \d+ updated, \d+ unchanged/);
    expect((await users()).get('new-4')).toMatchObject({ name: 'Quinn Joiner', roles: [] });
    const audit = (await running.app.store.list<{ actor: string; action: string; outcome: string; detail?: string }>('audit', SCHOOL)).map((r) => r.data);
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'coord-r', action: 'roster.sync', outcome: 'ok', detail: expect.stringMatching(/^1 added/) }));
  });

  it('leaves a team not confirmed alone from a personal chat, and says how to confirm it', async () => {
    const candidate = '19:class-7b@thread.tacv2';
    connector.rosters.set(candidate, [account('pupil-1', 'Pupil One')]);
    await running.post('/api/messages', conversationUpdate({ team: candidate, added: [{ id: '28:bot' }] }));
    await eventually('the candidate recorded', () => sourceOf(candidate));
    const [reply] = await say('coord-r', 'sync staff');
    expect(reply!.activity.text).toMatch(/synced from 1 team or workspace/);
    expect(reply!.activity.text).toMatch(/1 Teams team I am in is not synced.*mention me with "sync staff" in one of its channels/);
    expect(connector.rosterReads.filter((read) => read.teamId === candidate)).toEqual([]);
    expect(await running.app.directory.getUser(SCHOOL, 'pupil-1')).toBeUndefined();
    // Out of the way of the counts below.
    await running.post('/api/messages', conversationUpdate({ team: candidate, removed: [{ id: '28:bot' }] }));
  });

  it('writes nothing for members that did not change', async () => {
    const before = new Map([...(await running.app.store.list('user', SCHOOL))].map((r) => [r.id, r.etag]));
    const [reply] = await say('coord-r', 'sync staff');
    expect(reply!.activity.text).toMatch(/0 added, 0 updated, 6 unchanged/);
    const after = await running.app.store.list('user', SCHOOL);
    // Only the coordinator's own record may change (their turn); no roster member is rewritten.
    expect(after.filter((r) => r.id !== 'coord-r' && before.get(r.id) !== r.etag)).toEqual([]);
  });
});

describe('a personal chat Teams refuses to create', () => {
  it('records the person as missed (permanent, no retry) and keeps their roster reference', async () => {
    connector.failNext(403, 1, {}, 'create');
    const [reply] = await say('coord-r', 'alert Only new-4 needs a new chat for this one.');
    const id = /alert-\S+/.exec(reply!.activity.text)![0].replace(/\.$/, '');
    const progress = await eventually('the alert finished', async () => {
      const p = await running.app.outbox.progress(SCHOOL, id);
      return p.pending + p.inflight === 0 && p;
    });
    expect(progress.failures).toEqual([{ recipient: 'new-4', reason: expect.stringMatching(/403/) }]);
    expect(((await users()).get('new-4')!.reference as { kind?: string }).kind).toBe('teams-roster');
    expect(connector.created.filter((c) => c.parameters.members[0].id === '29:new-4')).toHaveLength(0);
  });
});

describe('members leaving the team', () => {
  it('marks them as left, keeps their record and roles, and alerts skip them', async () => {
    await running.app.directory.grantRole(SCHOOL, 'new-3', 'governor');
    const response = await running.post('/api/messages', conversationUpdate({ team: TEAM, removed: [{ id: '29:new-3', aadObjectId: 'new-3' }] }));
    expect(response.status).toBe(200);
    const left = (await users()).get('new-3')!;
    expect(left.leftAt).toBeDefined();
    expect(left.roles).toEqual(['governor']);
    const [reply] = await say('coord-r', 'alert Members who left are not sent this.');
    const count = Number(/going to (\d+) people/.exec(reply!.activity.text)![1]);
    expect(count).toBe((await users()).size - 2); // everyone but the coordinator and the one who left
  });

  it('stops following a team the bot is removed from', async () => {
    const response = await running.post('/api/messages', conversationUpdate({ team: TEAM, removed: [{ id: '28:bot' }] }));
    expect(response.status).toBe(200);
    const source = await running.app.store.get<RosterSource>({ kind: 'roster-source', school: SCHOOL, id: `teams:${TEAM}` });
    expect(source?.data.removedAt).toBeDefined();
    const [reply] = await say('coord-r', 'sync staff');
    expect(reply!.activity.text).toMatch(/do not sync any team or workspace/);
  });
});

describe('bad input', () => {
  it('stores nothing for a tenant that is not registered', async () => {
    const team = '19:elsewhere@thread.tacv2';
    connector.rosters.set(team, [account('stranger-1', 'Sam Stranger')]);
    const readsBefore = connector.rosterReads.length;
    const response = await running.post('/api/messages', conversationUpdate({ team, tenant: 'tenant-unknown', added: [{ id: '28:bot' }] }));
    expect(response.status).toBe(200);
    for (const school of await running.app.directory.listSchools()) {
      expect(await running.app.store.list('roster-source', school.id).then((sources) => sources.filter((s) => s.id.includes('elsewhere')))).toEqual([]);
      expect(await running.app.directory.getUser(school.id, 'stranger-1')).toBeUndefined();
    }
    expect(connector.rosterReads.length).toBe(readsBefore);
  });

  it.each([403, 500])('answers when the connector refuses the roster (%i), logs it without names, and retries only what may pass later', async (status) => {
    const team = `19:refused-${status}@thread.tacv2`;
    connector.rosters.set(team, [account(`refused-${status}`, 'Alice Example')]);
    const response = await running.post('/api/messages', conversationUpdate({ team, added: [{ id: '28:bot' }] }));
    expect(response.status).toBe(200);
    connector.failNext(status, 1, {}, 'members');
    const reply = await sayInChannel(team, 'coord-r', 'sync staff');
    expect(reply.activity.text).toMatch(/A Teams team could not be read/);
    const line = await eventually('the failure logged', async () => logs.lines().find((l) => l.msg === 'roster not read' && l.status === status));
    expect(line).toMatchObject({ school: SCHOOL, platform: 'teams', kind: status === 403 ? 'permanent' : 'transient' });
    if (status === 403) {
      expect(reply.activity.text).toMatch(/refused to list its members/);
      expect(await running.app.directory.getUser(SCHOOL, `refused-${status}`)).toBeUndefined();
    } else {
      // "it will be tried again": a sync job reads the team once the connector answers.
      expect(reply.activity.text).toMatch(/it will be tried again/);
      await eventually('the retried sync', () => running.app.directory.getUser(SCHOOL, `refused-${status}`));
    }
    expect(logs.raw().join('\n')).not.toMatch(/Alice Example/);
    await running.post('/api/messages', conversationUpdate({ team, removed: [{ id: '28:bot' }] }));
  });

  it('skips malformed members in an event and still answers 200', async () => {
    const response = await running.post('/api/messages', conversationUpdate({ team: TEAM, added: ['not a member', 5, { id: '' }, null], removed: [{ id: 42 }] }));
    expect(response.status).toBe(200);
  });
});
