/**
 * Issue 2, "Must have" 7: several schools in one deployment. Schools are registered with the real
 * command line; an unregistered tenant is told so politely and nothing is stored; the same user id
 * in two tenants is two people; nothing a turn in one school does reads or writes another school.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyDirectory } from '../../src/policies/load.ts';
import { countOperations, type CountingStore } from '../../src/store/counting-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { GLOBAL_PARTITION } from '../../src/store/store.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { repoRoot, startApp, type RunningApp } from '../helpers/app.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';

let dataDir: string;
let running: RunningApp;
let connector: FakeConnector;
let counted: CountingStore;
const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: dataDir, env: { DATA_DIR: dataDir, POLICIES_DIR: path.join(repoRoot, 'policies') } });
const registrations: Record<string, CliResult> = {};

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-schools-'));
  // Registered before the server starts, one process after another, as an IT lead would.
  registrations.a = await cli('schools', 'add', '--id', 'school-a', '--name', 'School A', '--teams-tenant', 'T1');
  registrations.b = await cli('schools', 'add', '--id', 'school-b', '--name', 'School B', '--teams-tenant', 'T2');
  registrations.aAgain = await cli('schools', 'add', '--id', 'school-a', '--name', 'School A Academy', '--teams-tenant', 'T1-second', '--slack-team', 'SA');
  registrations.taken = await cli('schools', 'add', '--id', 'school-b', '--name', 'School B', '--teams-tenant', 'T1');
  registrations.partlyTaken = await cli('schools', 'add', '--id', 'school-b', '--name', 'School B', '--teams-tenant', 'T3', '--slack-team', 'SA');
  registrations.grant = await cli('roles', 'grant', '--school', 'school-a', '--user', 'shared-user', '--role', 'coordinator');

  connector = await startFakeConnector();
  counted = countOperations(createSqliteStore({ file: path.join(dataDir, 'esafety.sqlite') }));
  running = await startApp({}, { store: counted.store, dataDir });
  const { documents } = await loadPolicyDirectory(path.join(repoRoot, 'policies'));
  for (const school of ['school-a', 'school-b']) await running.app.library.import(school, documents, 'test');
});
afterAll(async () => {
  await running.stop();
  await connector.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** Every record in the SQLite file, read directly (not through the app), as "school/kind/id etag". */
function allRecords(): string[] {
  const db = new Database(path.join(dataDir, 'esafety.sqlite'), { readonly: true });
  try {
    return (db.prepare('SELECT school, kind, id, etag FROM records ORDER BY school, kind, id').all() as Array<Record<string, string>>).map((r) => `${r.school}/${r.kind}/${r.id} ${r.etag}`);
  } finally {
    db.close();
  }
}

async function say(text: string, options: { tenantId?: string; userId?: string }): Promise<Array<Record<string, any>>> {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text, ...options }));
  expect(response.status).toBe(200);
  await connector.waitFor(before + 1);
  return connector.activities.slice(before).map((captured) => captured.activity);
}

const shown = (activity: Record<string, any>) => activity.text ?? cardText(cardOf(activity));

describe('registering schools from the command line', () => {
  it('`schools add` prints the school as JSON on standard output', () => {
    expect(registrations.a!.code).toBe(0);
    expect(JSON.parse(registrations.a!.stdout)).toMatchObject({ id: 'school-a', name: 'School A', teamsTenants: ['T1'] });
    expect(registrations.b!.code).toBe(0);
  });

  it('`schools add` again for the same id updates the name and adds the mappings', async () => {
    expect(registrations.aAgain!.code).toBe(0);
    expect(JSON.parse(registrations.aAgain!.stdout)).toMatchObject({ id: 'school-a', name: 'School A Academy', teamsTenants: ['T1', 'T1-second'], slackTeams: ['SA'] });
    expect(await running.app.directory.schoolForTenant('teams', 'T1-second')).toBe('school-a');
    expect(await running.app.directory.schoolForTenant('slack', 'SA')).toBe('school-a');
  });

  it('a tenant that belongs to another school is refused with a clear message', () => {
    expect(registrations.taken!.code).not.toBe(0);
    expect(registrations.taken!.stdout).toBe('');
    expect(registrations.taken!.stderr).toContain('Teams tenant T1 already belongs to school school-a');
  });

  it('a refused registration maps none of its tenants', async () => {
    expect(registrations.partlyTaken!.code).not.toBe(0);
    expect(registrations.partlyTaken!.stderr).toContain('Slack workspace SA already belongs to school school-a');
    expect(await running.app.directory.schoolForTenant('teams', 'T3')).toBeUndefined();
    expect((await running.app.directory.getSchool('school-b'))?.teamsTenants).toEqual(['T2']);
  });

  it('an invalid school id is refused with a clear message, not a stack trace', async () => {
    const result = await cli('schools', 'add', '--id', 'Not A Valid Id', '--name', 'X');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/"Not A Valid Id" is not a valid school id: .*lowercase/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('`schools list` prints one JSON line per school', async () => {
    const result = await cli('schools', 'list');
    expect(result.code).toBe(0);
    const ids = result.stdout.trim().split('\n').map((line) => JSON.parse(line).id);
    expect(ids).toEqual(expect.arrayContaining(['default', 'school-a', 'school-b']));
  });
});

describe('a message from a tenant that is not registered', () => {
  it('gets a polite "not set up yet" and nothing is stored', async () => {
    const before = allRecords();
    counted.reset();
    const [reply] = await say('can pupils use phones in class?', { tenantId: 'T-unknown', userId: 'stranger' });
    expect(shown(reply!)).toMatch(/This school is not set up yet/);
    expect(counted.counts().writes).toBe(0);
    expect(allRecords()).toEqual(before);
    expect(allRecords().filter((record) => /\/(user|conversation|question)\//.test(record) && record.includes('stranger'))).toEqual([]);
  });
});

describe('two schools in one deployment', () => {
  it('the same user id in two tenants holds separate roles', async () => {
    expect(registrations.grant!.code).toBe(0);
    const [inA] = await say('whoami', { tenantId: 'T1', userId: 'shared-user' });
    expect(shown(inA!)).toContain('School: School A Academy (school-a)');
    expect(shown(inA!)).toContain('Roles: staff, coordinator');
    const [inB] = await say('whoami', { tenantId: 'T2', userId: 'shared-user' });
    expect(shown(inB!)).toContain('School: School B (school-b)');
    expect(shown(inB!)).toMatch(/Roles: staff$/m);
    // A coordinator-only command works in A and is refused in B.
    const [listInB] = await say('roles list', { tenantId: 'T2', userId: 'shared-user' });
    expect(shown(listInB!)).toMatch(/Only the e-safety coordinator can do that/);
  });

  it('a question asked in school A is stored in A only, and a turn in B touches nothing of A', async () => {
    const question = 'can pupils use phones in class?';
    const [answerInA] = await say(question, { tenantId: 'T1', userId: 'asker' });
    expect(shown(answerInA!)).toMatch(/version/);
    const inA = await running.app.store.list<{ question: string; askedBy: string }>('question', 'school-a');
    expect(inA.map((r) => r.data)).toEqual([expect.objectContaining({ question, askedBy: 'asker' })]);
    expect(await running.app.store.list('question', 'school-b')).toEqual([]);

    counted.reset();
    await say(question, { tenantId: 'T2', userId: 'asker' });
    await say('questions report', { tenantId: 'T2', userId: 'asker' });
    const partitions = new Set(counted.log().map((entry) => entry.school));
    expect([...partitions].sort()).toEqual([GLOBAL_PARTITION, 'school-b'].filter((p) => partitions.has(p)).sort());
    expect(partitions.has('school-a')).toBe(false);
    expect((await running.app.store.list('question', 'school-b')).length).toBe(1);
    expect((await running.app.store.list('question', 'school-a')).length).toBe(1);
  });

  it('records in the file carry the school they belong to', () => {
    const users = allRecords().filter((record) => record.includes('/user/'));
    expect(users.filter((record) => record.includes('/user/shared-user ')).map((record) => record.split('/')[0]).sort()).toEqual(['school-a', 'school-b']);
  });
});

describe('a school registered while the server runs', () => {
  it("gets its review reminders and nightly retention sweeps at once, without a restart", async () => {
    expect((await cli('schools', 'add', '--id', 'school-late', '--name', 'Late School')).code).toBe(0);
    const jobs = await running.app.store.list<{ kind: string; state: string }>('job', 'school-late');
    expect(jobs.map((job) => job.data.kind).sort()).toEqual(['incidents.retention', 'outbox.retention', 'questions.retention', 'reviews.remind']);
    expect(jobs.every((job) => job.data.state === 'pending')).toBe(true);
    // Registering it again changes nothing (the jobs are there already).
    expect((await cli('schools', 'add', '--id', 'school-late', '--name', 'Late School')).code).toBe(0);
    expect(await running.app.store.list('job', 'school-late')).toHaveLength(4);
  });
});
