/**
 * Issue 7, data protection: the question log's retention and a member of staff's erasure, on both
 * stores (SQLite, and Cosmos DB through @zeit/cosmosdb-server on loopback), then from the command
 * line and as the server's nightly job. Erasure removes what is only about the person, anonymises
 * what the school works from, and leaves safeguarding and compliance records as they are.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHttpServer } from '@zeit/cosmosdb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEntry } from '../src/bot/audit.ts';
import { ERASED, PersonalData } from '../src/bot/features/personal-data.ts';
import { silentLogger } from '../src/logger.ts';
import { createCosmosStore } from '../src/store/cosmos/cosmos-store.ts';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/store.ts';
import { repoRoot, startApp } from './helpers/app.ts';
import { runCli } from './helpers/cli.ts';

const SCHOOL = 'harbour-lane';
const LEAVER = 'aad-leaver-1';
const OTHER = 'aad-colleague-2';
// Now, not a fixed date: the command line runs with the real clock.
const NOW = new Date();
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000).toISOString();

/** A school's records involving the leaver and a colleague, as the features write them. */
async function seed(store: Store, school = SCHOOL): Promise<void> {
  const put = (kind: string, id: string, data: unknown) => store.create({ kind, school, id }, data);
  await put('user', LEAVER, { id: LEAVER, platform: 'teams', name: 'Lena Leaver', roles: ['coordinator'], reference: { conversation: { id: 'a:1' } }, firstSeen: daysAgo(900), lastSeen: daysAgo(1) });
  await put('user', OTHER, { id: OTHER, platform: 'teams', name: 'Colin Colleague', roles: [], firstSeen: daysAgo(900), lastSeen: daysAgo(1) });
  await put('staff-profile', LEAVER, { groups: ['teaching'], leads: [] });
  await put('conversation', `teams:a:conv-1:${LEAVER}`, { form: { step: 1 } });
  await put('conversation', `teams:a:conv-2:${OTHER}`, {});
  await put('incident-draft', 'draft-open', { id: 'draft-open', reporter: LEAVER, values: { details: 'half-written report' }, createdAt: daysAgo(2), updatedAt: daysAgo(2) });
  await put('incident-draft', 'draft-sent', { id: 'draft-sent', reporter: LEAVER, values: {}, caseRef: 'INC-2026-0001', createdAt: daysAgo(30), updatedAt: daysAgo(30) });
  await put('incident-draft', 'draft-other', { id: 'draft-other', reporter: OTHER, values: {}, createdAt: daysAgo(2), updatedAt: daysAgo(2) });
  const question = (id: string, askedBy: string, at: string) => put('question', id, { id, question: `question ${id}`, askedBy, askedAt: at, intent: 'question', section: null, confidence: 0, abstained: true });
  await question(`${daysAgo(400)}-q-old-leaver`, LEAVER, daysAgo(400));
  await question(`${daysAgo(10)}-q-new-leaver`, LEAVER, daysAgo(10));
  await question(`${daysAgo(400)}-q-old-other`, OTHER, daysAgo(400));
  await question(`${daysAgo(10)}-q-new-other`, OTHER, daysAgo(10));
  const escalation = (id: string, data: Record<string, unknown>) => put('escalation', id, { id, questionId: 'q', question: `escalated ${id}`, askedAt: daysAgo(10), status: 'open', ...data });
  await escalation('esc-leaver-unsaved', { askedBy: LEAVER });
  await escalation('esc-leaver-saved', { askedBy: LEAVER, status: 'answered', answer: 'Yes', answeredBy: OTHER, saved: true });
  await escalation('esc-answered-by-leaver', { askedBy: OTHER, status: 'answered', answer: 'No', answeredBy: LEAVER });
  await escalation('esc-old', { askedBy: OTHER, askedAt: daysAgo(500) });
  await put('slack-form', 'form-1', { teamId: 'T1', userId: LEAVER, card: {} });
  await put('ack-open', `aup@abc:${LEAVER}`, { at: daysAgo(5) });
  await put('message-ref', `${LEAVER}:alert-progress-a1`, { platform: 'teams', conversationId: 'a:conv-1', messageId: 'm1' });
  await put('message-ref', `${OTHER}:alert-progress-a1`, { platform: 'teams', conversationId: 'a:conv-2', messageId: 'm2' });
  await put('ack', `aup@abc:${LEAVER}`, { docId: 'aup', hash: 'abc', version: '2026.1', userId: LEAVER, at: daysAgo(5), platform: 'teams' });
  await put('alert-read', `alert-1:${LEAVER}`, { at: daysAgo(3) });
  const caseRecord = (ref: string, data: Record<string, unknown>) => put('case', ref, { ref, draftId: 'd', category: 'staff-conduct', audience: 'headteacher', childProtection: false, values: { details: 'what happened' }, reporter: OTHER, reportedAt: daysAgo(30), status: 'new', subjects: [], entries: [], rev: 1, ...data });
  await caseRecord('INC-2026-0001', { reporter: LEAVER });
  await caseRecord('INC-2026-0002', { subjects: [LEAVER] });
}

function personalDataBehaviour(name: string, makeStore: () => Promise<Store>) {
  describe(`personal data on ${name}`, () => {
    let store: Store;
    let school: string;
    let service: PersonalData;
    beforeAll(async () => {
      store = await makeStore();
    });
    afterAll(async () => {
      await store.close();
    });
    const fresh = async () => {
      school = `s-${randomUUID().slice(0, 8)}`;
      await seed(store, school);
      service = new PersonalData({ store, audit: new AuditLog(store), log: silentLogger() });
    };
    const ids = async (kind: string) => (await store.list(kind, school)).map((r) => r.id).sort();

    it('deletes questions and escalations older than the retention period, and nothing newer', async () => {
      await fresh();
      const dry = await service.applyQuestionLogRetention(school, 365, NOW, { dryRun: true });
      expect(dry.questions.map((id) => id.replace(/^.*-q-/, ''))).toEqual(['old-leaver', 'old-other']);
      expect(dry.escalations).toEqual(['esc-old']);
      expect(await ids('question')).toHaveLength(4);
      const done = await service.applyQuestionLogRetention(school, 365, NOW);
      expect(done).toEqual(dry);
      expect((await ids('question')).map((id) => id.replace(/^.*-q-/, '')).sort()).toEqual(['new-leaver', 'new-other']);
      expect(await ids('escalation')).not.toContain('esc-old');
      const audit = (await store.list<AuditEntry>('audit', school)).map((r) => r.data);
      expect(audit).toEqual([expect.objectContaining({ actor: 'system', action: 'questions.retention', outcome: 'ok' })]);
    });

    it('forgets a member of staff: removes what is only theirs, anonymises what the school keeps, keeps safeguarding and compliance records', async () => {
      await fresh();
      const before = {
        cases: (await store.list('case', school)).map((r) => r.data),
        acks: (await store.list('ack', school)).map((r) => r.data),
        alertReads: await ids('alert-read'),
      };
      const dry = await service.forget(school, LEAVER, { actor: 'cli', dryRun: true });
      expect(await store.get({ kind: 'user', school, id: LEAVER })).toBeDefined();
      const summary = await service.forget(school, LEAVER, { actor: 'cli' });
      expect(summary).toEqual(dry);
      expect(summary).toEqual({
        school,
        directoryRecord: true,
        staffProfile: true,
        conversations: 1,
        incidentDrafts: 2,
        questions: 2,
        escalationsDeleted: 1,
        slackForms: 1,
        policyLinkOpens: 1,
        messageRefs: 1,
        escalationsAnonymised: 2,
        kept: { cases: 2, acknowledgements: 1, alertAcknowledgements: 1 },
      });
      // Gone: the name, roles and reference with the directory record, and everything only about them.
      expect(await store.get({ kind: 'user', school, id: LEAVER })).toBeUndefined();
      expect(await store.get({ kind: 'staff-profile', school, id: LEAVER })).toBeUndefined();
      expect(await ids('conversation')).toEqual([`teams:a:conv-2:${OTHER}`]);
      expect(await ids('incident-draft')).toEqual(['draft-other']);
      expect((await store.list<{ askedBy: string }>('question', school)).map((r) => r.data.askedBy)).toEqual([OTHER, OTHER]);
      expect(await ids('slack-form')).toEqual([]);
      expect(await ids('ack-open')).toEqual([]);
      expect(await ids('message-ref')).toEqual([`${OTHER}:alert-progress-a1`]);
      // Anonymised: a saved answer (school policy) and an answer they gave.
      const escalations = Object.fromEntries((await store.list<Record<string, unknown>>('escalation', school)).map((r) => [r.id, r.data]));
      expect(Object.keys(escalations).sort()).toEqual(['esc-answered-by-leaver', 'esc-leaver-saved', 'esc-old']);
      expect(escalations['esc-leaver-saved']).toMatchObject({ askedBy: ERASED, answeredBy: OTHER, answer: 'Yes' });
      expect(escalations['esc-answered-by-leaver']).toMatchObject({ askedBy: OTHER, answeredBy: ERASED, answer: 'No' });
      // Kept exactly: the cases (a concern about them stays theirs and hidden from them), acceptances, alert acknowledgements.
      expect((await store.list('case', school)).map((r) => r.data)).toEqual(before.cases);
      expect((await store.list('ack', school)).map((r) => r.data)).toEqual(before.acks);
      expect(await ids('alert-read')).toEqual(before.alertReads);
      // The colleague is untouched.
      expect(await store.get({ kind: 'user', school, id: OTHER })).toBeDefined();
      const audit = (await store.list<AuditEntry>('audit', school)).map((r) => r.data);
      expect(audit).toEqual([expect.objectContaining({ actor: 'cli', action: 'people.forget', target: LEAVER, outcome: 'ok' })]);
      expect(JSON.stringify(audit)).not.toContain('Lena');
      // Running it again finds nothing left to remove.
      const again = await service.forget(school, LEAVER, { actor: 'cli' });
      expect(again).toMatchObject({ directoryRecord: false, conversations: 0, incidentDrafts: 0, questions: 0, escalationsDeleted: 0, escalationsAnonymised: 0 });
    });
  });
}

personalDataBehaviour('SQLite', async () => createSqliteStore({ file: ':memory:' }));

let cosmos: Server;
let cosmosEndpoint: string;
beforeAll(async () => {
  cosmos = createHttpServer();
  await new Promise<void>((resolve) => cosmos.listen(0, '127.0.0.1', resolve));
  cosmosEndpoint = `http://127.0.0.1:${(cosmos.address() as AddressInfo).port}`;
});
afterAll(async () => {
  cosmos.closeAllConnections();
  await new Promise<void>((resolve) => cosmos.close(() => resolve()));
});
personalDataBehaviour('Cosmos DB (local server)', () => createCosmosStore({ endpoint: cosmosEndpoint, key: 'dummy-key-not-a-secret', database: `esafety-pd-${randomUUID()}` }));

describe('from the command line', () => {
  let dir: string;
  const env = () => ({ DATA_DIR: path.join(dir, 'data'), POLICIES_DIR: path.join(repoRoot, 'policies'), LOG_LEVEL: 'warn', DEFAULT_SCHOOL: SCHOOL });
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'esafety-people-'));
    const listed = await runCli(['schools', 'list'], { cwd: dir, env: env() });
    expect(listed.code).toBe(0);
    const store = createSqliteStore({ file: path.join(dir, 'data', 'esafety.sqlite') });
    await seed(store);
    await store.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('people forget refuses without --school or --user, and for an unknown school', async () => {
    const noSchool = await runCli(['people', 'forget', '--user', LEAVER], { cwd: dir, env: env() });
    expect(noSchool.code).not.toBe(0);
    expect(noSchool.stderr).toMatch(/--school is required/);
    const noUser = await runCli(['people', 'forget', '--school', SCHOOL], { cwd: dir, env: env() });
    expect(noUser.code).not.toBe(0);
    expect(noUser.stderr).toMatch(/--user is required/);
    const unknown = await runCli(['people', 'forget', '--school', 'nope', '--user', LEAVER], { cwd: dir, env: env() });
    expect(unknown.stderr).toMatch(/no school "nope"/);
    const unknownUser = await runCli(['people', 'forget', '--school', SCHOOL, '--user', 'U-NOBODY', '--dry-run'], { cwd: dir, env: env() });
    expect(unknownUser.code).toBe(0);
    expect(unknownUser.stderr).toMatch(/No record in school .* is about U-NOBODY: nothing to erase\. Check the id/);
  });

  it('people forget prints what it removed and kept on standard error, and audits it', async () => {
    const dry = await runCli(['people', 'forget', '--school', SCHOOL, '--user', LEAVER, '--dry-run'], { cwd: dir, env: env() });
    expect(dry.code).toBe(0);
    expect(dry.stderr).toMatch(/^Dry run: nothing changed/);
    const result = await runCli(['people', 'forget', '--school', SCHOOL, '--user', LEAVER], { cwd: dir, env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`Personal data of ${LEAVER} in school ${SCHOOL}:`);
    expect(result.stderr).toMatch(/removed: directory record .*: yes/);
    expect(result.stderr).toMatch(/kept .*: 2 incident case\(s\), 1 policy acceptance\(s\), 1 critical alert acknowledgement\(s\)/);
    const store = createSqliteStore({ file: path.join(dir, 'data', 'esafety.sqlite') });
    const audit = (await store.list<AuditEntry>('audit', SCHOOL)).map((r) => r.data);
    const user = await store.get({ kind: 'user', school: SCHOOL, id: LEAVER });
    await store.close();
    expect(user).toBeUndefined();
    expect(audit.filter((e) => e.action === 'people.forget')).toEqual([expect.objectContaining({ actor: 'cli', target: LEAVER })]);
  });

  it('questions retention deletes the question log past QUESTION_LOG_RETENTION_DAYS', async () => {
    const result = await runCli(['questions', 'retention', '--school', SCHOOL], { cwd: dir, env: { ...env(), QUESTION_LOG_RETENTION_DAYS: '30' } });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/deleted \d+ question\(s\) and 1 escalation\(s\) older than 30 days/);
    const store = createSqliteStore({ file: path.join(dir, 'data', 'esafety.sqlite') });
    const left = await store.list<{ askedAt: string }>('question', SCHOOL);
    await store.close();
    expect(left.every((q) => Date.now() - Date.parse(q.data.askedAt) <= 30 * 86_400_000)).toBe(true);
  });
});

describe('the nightly job', () => {
  it('is scheduled for every school by the server, next to the incident and outbox retention sweeps', async () => {
    const running = await startApp();
    try {
      const jobs = (await running.app.store.list<{ kind: string }>('job', 'default')).map((r) => r.data.kind);
      expect(jobs).toEqual(expect.arrayContaining(['incidents.retention', 'questions.retention', 'outbox.retention']));
    } finally {
      await running.stop();
    }
  });
});
