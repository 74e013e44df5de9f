/**
 * How a roster changes the directory (src/bot/roster.ts), on the SQLite store: it adds and names
 * people, gives a way to reach only those the bot cannot reach yet, marks and unmarks those who
 * left, and writes nothing for people who did not change, whether it compares by point reads (a
 * joiner) or by one listing (a whole team).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Directory } from '../src/bot/directory.ts';
import { Roster, syncJobId, type RosterMember } from '../src/bot/roster.ts';
import { DeliveryError, type JobScheduler } from '../src/delivery/types.ts';
import { silentLogger } from '../src/logger.ts';
import { countOperations } from '../src/store/counting-store.ts';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/store.ts';

const SCHOOL = 'unit-school';
let store: Store;
let directory: Directory;
let roster: Roster;

beforeEach(async () => {
  store = createSqliteStore({ file: ':memory:' });
  directory = new Directory(store, { cacheSeconds: 0 });
  roster = new Roster({ directory, store, log: silentLogger() });
  await directory.upsertSchool({ id: SCHOOL, name: 'Unit School', slackTeam: 'T0UNIT' });
});
afterEach(async () => {
  await store.close();
});

const slackMember = (id: string, name: string, extra: Partial<RosterMember> = {}): RosterMember => ({ id, name, reference: { teamId: 'T0UNIT', userId: id }, ...extra });

describe('applying a roster', () => {
  it('never replaces a reference the bot has, nor roles or first-seen, and takes the new name', async () => {
    const personal = { teamId: 'T0UNIT', userId: 'U0A', channel: 'D0A' };
    const { user } = await directory.noteUserSeen(SCHOOL, { id: 'U0A', platform: 'slack', name: 'Old Name', reference: personal });
    await directory.grantRole(SCHOOL, 'U0A', 'dsl');
    const counts = await roster.apply(SCHOOL, 'slack', [slackMember('U0A', 'New Name')]);
    expect(counts).toEqual({ added: 0, updated: 1, unchanged: 0, skipped: 0 });
    const stored = (await directory.getUser(SCHOOL, 'U0A'))!.data;
    expect(stored).toMatchObject({ name: 'New Name', roles: ['dsl'], reference: personal, firstSeen: user.firstSeen });
  });

  it('gives a record made by a role grant (no conversation) the roster\'s reference and platform', async () => {
    await directory.grantRole(SCHOOL, 'U0B', 'coordinator');
    await roster.apply(SCHOOL, 'slack', [slackMember('U0B', 'Bea')]);
    expect((await directory.getUser(SCHOOL, 'U0B'))!.data).toMatchObject({ platform: 'slack', roles: ['coordinator'], reference: { userId: 'U0B' } });
  });

  it('marks someone who left, and unmarks them when they are back', async () => {
    await roster.apply(SCHOOL, 'slack', [slackMember('U0C', 'Cal')]);
    await roster.apply(SCHOOL, 'slack', [{ id: 'U0C', name: 'Cal', left: true }]);
    expect((await directory.getUser(SCHOOL, 'U0C'))!.data.leftAt).toBeDefined();
    await roster.apply(SCHOOL, 'slack', [slackMember('U0C', 'Cal')]);
    expect((await directory.getUser(SCHOOL, 'U0C'))!.data.leftAt).toBeUndefined();
  });

  it('writes nothing for unchanged people, by point reads for a few and one listing for many', async () => {
    const many = Array.from({ length: 30 }, (_, i) => slackMember(`U0M${i}`, `Member ${i}`));
    expect(await roster.apply(SCHOOL, 'slack', many)).toMatchObject({ added: 30 });
    const counted = countOperations(store);
    const countingRoster = new Roster({ directory: new Directory(counted.store, { cacheSeconds: 0 }), store: counted.store, log: silentLogger() });
    expect(await countingRoster.apply(SCHOOL, 'slack', many)).toEqual({ added: 0, updated: 0, unchanged: 30, skipped: 0 });
    expect(counted.counts()).toEqual({ reads: 0, writes: 0, queries: 1, total: 1 });
    counted.reset();
    expect(await countingRoster.apply(SCHOOL, 'slack', many.slice(0, 2))).toMatchObject({ unchanged: 2 });
    expect(counted.counts()).toEqual({ reads: 2, writes: 0, queries: 0, total: 2 });
  });

  it('counts a person listed twice once', async () => {
    expect(await roster.apply(SCHOOL, 'slack', [slackMember('U0D', 'Dee'), slackMember('U0D', 'Dee')])).toEqual({ added: 1, updated: 0, unchanged: 0, skipped: 0 });
  });
});

describe('a personal install', () => {
  const chat = (id: string) => ({ channelId: 'msteams', conversation: { id, conversationType: 'personal' }, user: { id: '29:P0A', aadObjectId: 'P0A' } });

  it('creates the record with the chat, then writes nothing for the same chat', async () => {
    await roster.notePersonalConversation(SCHOOL, 'teams', { id: 'P0A', name: 'Pat', reference: chat('a:1') });
    const created = (await directory.getUser(SCHOOL, 'P0A'))!;
    expect(created.data).toMatchObject({ platform: 'teams', name: 'Pat', roles: [], reference: chat('a:1') });
    await roster.notePersonalConversation(SCHOOL, 'teams', { id: 'P0A', name: 'Pat', reference: chat('a:1') });
    expect((await directory.getUser(SCHOOL, 'P0A'))!.etag).toBe(created.etag);
  });

  it('replaces any earlier reference, keeping roles, first-seen and a "left" mark', async () => {
    await roster.apply(SCHOOL, 'teams', [{ id: 'P0B', name: 'Bo', reference: { kind: 'teams-roster' } }]);
    await directory.grantRole(SCHOOL, 'P0B', 'governor');
    await roster.markLeft(SCHOOL, ['P0B']);
    const before = (await directory.getUser(SCHOOL, 'P0B'))!.data;
    await roster.notePersonalConversation(SCHOOL, 'teams', { id: 'P0B', reference: chat('a:2') });
    const after = (await directory.getUser(SCHOOL, 'P0B'))!.data;
    expect(after).toMatchObject({ name: 'Bo', roles: ['governor'], firstSeen: before.firstSeen, leftAt: before.leftAt, reference: chat('a:2') });
  });

  it('keeps a "left" mark when the person messages the bot from a new chat', async () => {
    await roster.apply(SCHOOL, 'slack', [slackMember('U0L', 'Lee')]);
    await roster.markLeft(SCHOOL, ['U0L']);
    const { leftAt } = (await directory.getUser(SCHOOL, 'U0L'))!.data;
    await directory.noteUserSeen(SCHOOL, { id: 'U0L', platform: 'slack', name: 'Lee', reference: { teamId: 'T0UNIT', userId: 'U0L', channel: 'D0L' } });
    expect((await directory.getUser(SCHOOL, 'U0L'))!.data).toMatchObject({ leftAt, reference: { channel: 'D0L' } });
  });
});

describe('following a team or workspace', () => {
  it('writes the source only when it is new, changed or back after a removal', async () => {
    expect(await roster.noteSource(SCHOOL, { platform: 'slack', teamId: 'T0UNIT', access: { enterpriseId: 'E0X' } })).toBe(true);
    expect(await roster.noteSource(SCHOOL, { platform: 'slack', teamId: 'T0UNIT', access: {} })).toBe(false);
    const [source] = await roster.sources(SCHOOL);
    expect(source!.access).toEqual({ enterpriseId: 'E0X' }); // what is not given is kept
    await roster.removeSource(SCHOOL, 'slack', 'T0UNIT');
    expect((await roster.sources(SCHOOL))[0]!.removedAt).toBeDefined();
    expect(await roster.noteSource(SCHOOL, { platform: 'slack', teamId: 'T0UNIT', access: {} })).toBe(true);
    expect((await roster.sources(SCHOOL))[0]!.removedAt).toBeUndefined();
  });

  it('confirms a Teams team once, keeps it through later notes, and drops it when the team comes back after a removal', async () => {
    const team = { platform: 'teams' as const, teamId: '19:t', access: { tenantId: 'x' } };
    expect(await roster.recordSource(SCHOOL, team)).toEqual({ isNew: true, confirmed: false });
    expect(await roster.candidates(SCHOOL)).toHaveLength(1);
    expect(await roster.confirmSource(SCHOOL, 'teams:19:t', 'coord')).toBe(true);
    expect(await roster.confirmSource(SCHOOL, 'teams:19:t', 'someone-else')).toBe(false);
    expect(await roster.recordSource(SCHOOL, { ...team, access: { tenantId: 'y' } })).toEqual({ isNew: false, confirmed: true });
    expect((await roster.sources(SCHOOL))[0]).toMatchObject({ confirmedBy: 'coord', access: { tenantId: 'y' } });
    expect(await roster.candidates(SCHOOL)).toEqual([]);
    await roster.removeSource(SCHOOL, 'teams', '19:t');
    expect(await roster.confirmSource(SCHOOL, 'teams:19:t', 'coord')).toBeUndefined();
    expect(await roster.recordSource(SCHOOL, team)).toEqual({ isNew: true, confirmed: false });
    expect((await roster.sources(SCHOOL))[0]!.confirmedBy).toBeUndefined();
  });

  it('never reads a candidate, and reads a Slack workspace with no confirmation', async () => {
    const reads: string[] = [];
    roster.register('teams', async (source) => (reads.push(source.id), { members: [{ id: 'pupil' }], skipped: 0 }));
    roster.register('slack', async (source) => (reads.push(source.id), { members: [slackMember('U0S', 'Sal')], skipped: 0 }));
    await roster.noteSource(SCHOOL, { platform: 'teams', teamId: '19:class', access: {} });
    await roster.noteSource(SCHOOL, { platform: 'slack', teamId: 'T0UNIT', access: {} });
    expect(await roster.syncSource(SCHOOL, 'teams:19:class')).toMatchObject({ failure: 'not confirmed as a staff team' });
    expect((await roster.syncSchool(SCHOOL)).map((result) => result.source.id)).toEqual(['slack:T0UNIT']);
    expect(reads).toEqual(['slack:T0UNIT']);
    expect(await directory.getUser(SCHOOL, 'pupil')).toBeUndefined();
  });

  it('schedules a sync job for a workspace the platform did not answer during "sync staff", and none for one it refused', async () => {
    const scheduled: string[] = [];
    const jobs: JobScheduler = { register: () => {}, schedule: async (job) => void scheduled.push(job.id), cancel: async () => false };
    const withJobs = new Roster({ directory, store, jobs, log: silentLogger() });
    let kind: 'transient' | 'permanent' = 'transient';
    withJobs.register('slack', async () => {
      throw new DeliveryError(kind, 'no');
    });
    await withJobs.noteSource(SCHOOL, { platform: 'slack', teamId: 'T0UNIT', access: {} });
    expect(await withJobs.syncSchool(SCHOOL)).toMatchObject([{ failure: 'the platform did not answer; it will be tried again' }]);
    expect(scheduled).toEqual([syncJobId('slack:T0UNIT')]);
    kind = 'permanent';
    expect(await withJobs.syncSchool(SCHOOL)).toMatchObject([{ failure: 'the platform refused to list its members' }]);
    expect(scheduled).toHaveLength(1);
  });

  it('remembers a created conversation for a registered workspace only', async () => {
    await roster.apply(SCHOOL, 'slack', [slackMember('U0E', 'Eve')]);
    await roster.rememberConversation('slack', 'T0UNIT', 'U0E', { teamId: 'T0UNIT', userId: 'U0E', channel: 'D0E' });
    expect((await directory.getUser(SCHOOL, 'U0E'))!.data.reference).toEqual({ teamId: 'T0UNIT', userId: 'U0E', channel: 'D0E' });
    await roster.rememberConversation('slack', 'T0NOWHERE', 'U0E', { teamId: 'T0NOWHERE', userId: 'U0E', channel: 'D0X' });
    expect((await directory.getUser(SCHOOL, 'U0E'))!.data.reference).toEqual({ teamId: 'T0UNIT', userId: 'U0E', channel: 'D0E' });
  });
});
