/**
 * Durable jobs on both stores: run once across instances, survive a restart, retried with backoff
 * then failed (logged without content), cancelled and rescheduled, taken over after a crash; and
 * the working-hours helpers and recurring work over croner.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inWorkingHours, Jobs, nextOccurrence, nextWorkingTime, recurring, type JobsOptions } from '../../src/delivery/jobs.ts';
import type { Job } from '../../src/delivery/types.ts';
import { silentLogger, type Logger } from '../../src/logger.ts';
import type { Store } from '../../src/store/store.ts';
import { memoryLog } from '../helpers/memory-log.ts';
import { cosmosStores, sqliteStores, waitUntil, type StoreKind } from './helpers.ts';

const FAST_JOBS: Partial<JobsOptions> = { pollMs: 100, leaseMs: 1000, retryBaseMs: 60, retryMaxMs: 200, maxAttempts: 3 };

describe.each([
  ['SQLite', sqliteStores],
  ['Cosmos DB (local server)', cosmosStores],
] as const)('durable jobs on %s', (_name, makeKind) => {
  let kind: StoreKind;
  const runners: Jobs[] = [];
  const newSchool = () => `s-${randomUUID().slice(0, 8)}`;
  const runner = async (store?: Store, options: Partial<JobsOptions> = {}, log: Logger = silentLogger()) => {
    const jobs = new Jobs({ store: store ?? (await kind.open()), log }, { ...FAST_JOBS, ...options });
    runners.push(jobs);
    return jobs;
  };

  beforeAll(async () => {
    kind = await makeKind();
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((jobs) => jobs.stop(100)));
  });
  afterAll(async () => {
    await kind?.close();
  });

  it('runs each due job once, across two instances', async () => {
    const school = newSchool();
    const runs: string[] = [];
    const one = await runner();
    const two = await runner();
    for (const jobs of [one, two]) jobs.register<{ n: number }>('count', async (job) => void runs.push(`${job.id}:${job.attempt}`));
    for (let i = 0; i < 12; i++) await one.schedule({ school, id: `job-${i}`, kind: 'count', runAt: new Date(Date.now() - 1000), payload: { n: i } });
    await Promise.all([one.start(), two.start()]);
    await waitUntil(() => runs.length >= 12, 20_000, 'the jobs to run');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(runs.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `job-${i}:1`).sort());
    expect(await one.get(school, 'job-0')).toBeUndefined(); // done jobs are removed
  });

  it('keeps jobs across a restart: a job that fell due while no runner ran runs at the next start, a later one at its time', async () => {
    const school = newSchool();
    const store = await kind.open();
    const before = await runner(store);
    await before.schedule({ school, id: 'overdue', kind: 'remind', runAt: new Date(Date.now() + 100), payload: {} });
    const laterAt = new Date(Date.now() + 900);
    await before.schedule({ school, id: 'later', kind: 'remind', runAt: laterAt, payload: {} });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A new process: its own store connection and runner.
    const after = await runner();
    const ran: Array<{ id: string; at: number }> = [];
    after.register('remind', async (job) => void ran.push({ id: job.id, at: Date.now() }));
    await after.start();
    await waitUntil(() => ran.length === 2, 20_000, 'both jobs');
    expect(ran.map((r) => r.id)).toEqual(['overdue', 'later']);
    expect(ran[1]!.at).toBeGreaterThanOrEqual(laterAt.getTime());
  });

  it('retries a failing handler with backoff, then marks the job failed and logs it without its content', async () => {
    const school = newSchool();
    const log = memoryLog('info');
    const jobs = await runner(undefined, {}, log.log);
    const attempts: Array<{ attempt: number; at: number }> = [];
    jobs.register<{ secret: string }>('flaky', async (job) => {
      attempts.push({ attempt: job.attempt!, at: Date.now() });
      if (job.id === 'recovers' && job.attempt === 2) return;
      throw new Error(`could not handle ${job.payload.secret}`);
    });
    await jobs.schedule({ school, id: 'recovers', kind: 'flaky', runAt: new Date(), payload: { secret: 'pupil-name-Alex' } });
    await jobs.start();
    await waitUntil(async () => !(await jobs.get(school, 'recovers')), 20_000, 'the recovery');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(25);

    attempts.length = 0;
    await jobs.schedule({ school, id: 'hopeless', kind: 'flaky', runAt: new Date(), payload: { secret: 'pupil-name-Alex' } });
    await waitUntil(async () => (await jobs.get(school, 'hopeless'))?.state === 'failed', 20_000, 'the failure');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(await jobs.get(school, 'hopeless')).toMatchObject({ state: 'failed', attempts: 3, lastError: 'Error' });
    const failed = log.lines().find((line) => line.msg === 'job failed; not retried again');
    expect(failed).toMatchObject({ kind: 'flaky', school, attempts: 3, err: 'Error' });
    expect(log.raw().join('\n')).not.toContain('pupil-name-Alex');
    // Not run again.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(attempts).toHaveLength(3);
  });

  it('cancels a job, and scheduling the same id again replaces the pending one', async () => {
    const school = newSchool();
    const jobs = await runner();
    const ran: Array<{ id: string; payload: unknown; at: number }> = [];
    jobs.register('note', async (job) => void ran.push({ id: job.id, payload: job.payload, at: Date.now() }));
    await jobs.start();
    await jobs.schedule({ school, id: 'cancelled', kind: 'note', runAt: new Date(Date.now() + 300), payload: {} });
    expect(await jobs.cancel(school, 'cancelled')).toBe(true);
    expect(await jobs.cancel(school, 'cancelled')).toBe(false);
    await jobs.schedule({ school, id: 'moved', kind: 'note', runAt: new Date(Date.now() + 200), payload: { v: 1 } });
    const movedTo = new Date(Date.now() + 700);
    await jobs.schedule({ school, id: 'moved', kind: 'note', runAt: movedTo, payload: { v: 2 } });
    await waitUntil(() => ran.length >= 1, 20_000, 'the moved job');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(ran.map((r) => [r.id, r.payload])).toEqual([['moved', { v: 2 }]]);
    expect(ran[0]!.at).toBeGreaterThanOrEqual(movedTo.getTime());
    const due = await (await kind.open()).list('job-due', '_global');
    expect(due.filter((entry) => entry.id.includes(`|${school}|`))).toEqual([]);
  });

  it('keeps a job that two schedules wrote at the same run time, whichever wrote its due entry last', async () => {
    // A live progress card's refresh run reschedules itself while "Refresh" reschedules the same
    // job: both can land on the same millisecond, and their writes can interleave so that the due
    // entry (one per run time) carries one schedule's generation and the job the other's.
    const school = newSchool();
    const store = await kind.open();
    let reachedJobWrite!: () => void;
    const atJobWrite = new Promise<void>((resolve) => (reachedJobWrite = resolve));
    let releaseJobWrite!: () => void;
    const jobWriteReleased = new Promise<void>((resolve) => (releaseJobWrite = resolve));
    let held = false;
    const gated = new Proxy(store, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property !== 'get') return typeof value === 'function' ? value.bind(target) : value;
        return async (key: { kind: string }) => {
          if (key.kind === 'job' && !held) {
            held = true;
            reachedJobWrite();
            await jobWriteReleased;
          }
          return target.get(key as never);
        };
      },
    });
    const jobs = await runner(gated);
    const ran: unknown[] = [];
    jobs.register('refresh', async (job) => void ran.push(job.payload));
    const runAt = new Date(Date.now() - 1000);
    // First: due entry written, then held before its job write; second: both writes; then the first's job write.
    const first = jobs.schedule({ school, id: 'card', kind: 'refresh', runAt, payload: { by: 'first' } });
    await atJobWrite;
    await jobs.schedule({ school, id: 'card', kind: 'refresh', runAt, payload: { by: 'second' } });
    releaseJobWrite();
    await first;
    await jobs.runDue();
    expect(ran).toEqual([{ by: 'first' }]);
    expect(await jobs.get(school, 'card')).toBeUndefined();
    const due = await store.list('job-due', '_global');
    expect(due.filter((entry) => entry.id.includes(`|${school}|`))).toEqual([]);
  });

  it('takes over a job whose runner died while running it, once its lease has expired', async () => {
    const school = newSchool();
    const dying = await runner(undefined, { leaseMs: 600 });
    let started = 0;
    dying.register('long', async () => {
      started++;
      await new Promise(() => undefined); // the process dies here
    });
    await dying.schedule({ school, id: 'j', kind: 'long', runAt: new Date(), payload: {} });
    await dying.start();
    await waitUntil(() => started === 1, 5000, 'the first run');
    const survivor = await runner();
    const attempts: number[] = [];
    survivor.register('long', async (job: Job) => void attempts.push(job.attempt!));
    await survivor.start();
    await waitUntil(() => attempts.length === 1, 5000, 'the takeover');
    expect(attempts).toEqual([2]);
    runners.splice(runners.indexOf(dying), 1); // its handler never returns: nothing to wait for
  });

  it('runs recurring work and schedules its next occurrence after each run (and after a final failure)', async () => {
    const school = newSchool();
    const jobs = await runner();
    const runs: number[] = [];
    const series = recurring(jobs, {
      kind: 'tick',
      pattern: '* * * * * *', // every second
      timeZone: () => 'Europe/London',
      workingHours: false,
      handler: async () => {
        runs.push(Date.now());
        if (runs.length === 2) throw new Error('one bad run');
      },
    });
    await series.ensure(school);
    await series.ensure(school); // idempotent: still one job
    await jobs.start();
    await waitUntil(() => runs.length >= 4, 15_000, 'four runs');
    expect((await jobs.get(school, 'tick'))?.state).toMatch(/pending|running/);
    expect(() => recurring(jobs, { kind: 'bad', pattern: 'not a pattern', timeZone: () => 'Europe/London', handler: async () => undefined })).toThrow();
  });
});

describe('working hours in the school\'s time zone', () => {
  it('knows working hours from the weekend and the night, in the school\'s zone', () => {
    expect(inWorkingHours(new Date('2026-06-10T09:30:00Z'), 'Europe/London')).toBe(true); // Wed 10:30 BST
    expect(inWorkingHours(new Date('2026-06-10T16:30:00Z'), 'Europe/London')).toBe(false); // 17:30 BST
    expect(inWorkingHours(new Date('2026-06-13T10:00:00Z'), 'Europe/London')).toBe(false); // Saturday
    expect(inWorkingHours(new Date('2026-06-10T13:00:00Z'), 'America/New_York')).toBe(true); // 09:00 EDT
  });

  it('moves a time outside working hours to the start of the next working day', () => {
    // Saturday noon in London (BST) → Monday 08:00 BST = 07:00 UTC.
    expect(nextWorkingTime(new Date('2026-06-13T11:00:00Z'), 'Europe/London').toISOString()).toBe('2026-06-15T07:00:00.000Z');
    // Friday 18:00 GMT in winter → Monday 08:00 GMT.
    expect(nextWorkingTime(new Date('2026-01-09T18:00:00Z'), 'Europe/London').toISOString()).toBe('2026-01-12T08:00:00.000Z');
    // Already in working hours: unchanged.
    const inHours = new Date('2026-06-10T09:30:00Z');
    expect(nextWorkingTime(inHours, 'Europe/London')).toBe(inHours);
    // 09:00 on school days, from a Friday afternoon in New York.
    expect(nextOccurrence('0 9 * * 1-5', 'America/New_York', new Date('2026-06-12T18:00:00Z')).toISOString()).toBe('2026-06-15T13:00:00.000Z');
  });
});
