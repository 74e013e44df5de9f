/**
 * Durable jobs (JobScheduler): timers kept in the store, so they survive restarts and run once
 * across instances. A runner in each server process lists the jobs that are due, claims one with a
 * lease (replace by etag: one winner), runs its handler, and deletes it; a handler that throws is
 * retried with backoff a few times, then the job is marked failed and logged (kind, school,
 * attempts, the error's name: never its message or the payload).
 *
 * | kind | partition | id | what |
 * |---|---|---|---|
 * | `job` | school | the job's id | kind, runAt, payload, state, attempts, lease, generation |
 * | `job-due` | `_global` | `<runAt ISO>|<school>|<job id>` | the due-time index: listing it by id gives the earliest first |
 *
 * The due index holds ids and times only (no payload), so the runner finds due work in every school
 * with one small query, however many schools there are. A schedule writes the index entry first and
 * the job second: a crash between leaves an entry pointing at nothing, which the runner removes.
 *
 * Recurring work in working hours of the school's time zone: see `recurring` (croner) at the end.
 */
import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import { AppError, isAppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { GLOBAL_PARTITION, type Store, type StoredRecord } from '../store/store.ts';
import { noTelemetry, type Telemetry } from '../telemetry.ts';
import { backoffMs, forEachLimit, Waker } from './limits.ts';
import { isRace, mutate, replaceIfUnchanged } from './store-helpers.ts';
import type { Job, JobScheduler } from './types.ts';

export interface JobRecord<P = unknown> {
  id: string;
  kind: string;
  school: string;
  runAt: string;
  payload: P;
  state: 'pending' | 'running' | 'failed';
  /** Runs started. */
  attempts: number;
  /** Changes on every schedule (which schedule wrote the job, for inspection; runs go by runAt, see #runOne). */
  generation: string;
  lease?: { owner: string; until: string };
  /** The last failure's error name (never its message). */
  lastError?: string;
  createdAt: string;
}

interface DueEntry {
  school: string;
  id: string;
  generation: string;
  runAt: string;
}

export interface JobsOptions {
  instanceId: string;
  /** How often an idle runner lists the due index (jobs scheduled in this process wake it at once). */
  pollMs: number;
  /** A claimed job's lease: a runner that died is replaced after this. */
  leaseMs: number;
  /** Runs before a failing job is marked failed. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Due entries read per listing, and jobs run at once. */
  batch: number;
  concurrency: number;
}

export const DEFAULT_JOBS_OPTIONS: Omit<JobsOptions, 'instanceId'> = {
  pollMs: 30_000,
  leaseMs: 5 * 60_000,
  maxAttempts: 5,
  retryBaseMs: 30_000,
  retryMaxMs: 60 * 60_000,
  batch: 50,
  concurrency: 4,
};

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$/;
const jobKey = (school: string, id: string) => ({ kind: 'job', school, id });
const dueKey = (runAt: string, school: string, id: string) => ({ kind: 'job-due', school: GLOBAL_PARTITION, id: `${runAt}|${school}|${id}` });

type Handler = (job: Job<any>) => Promise<void>;

export class Jobs implements JobScheduler {
  readonly instanceId: string;
  readonly options: JobsOptions;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #telemetry: Telemetry;
  readonly #handlers = new Map<string, Handler>();
  readonly #unknownKinds = new Set<string>();
  #abort = new AbortController();
  #waker?: Waker;
  #loop?: Promise<void>;
  #stopping = false;
  #running = false;
  readonly #inflight = new Set<Promise<unknown>>();

  constructor(deps: { store: Store; log: Logger; telemetry?: Telemetry }, options: Partial<JobsOptions> = {}) {
    this.#store = deps.store;
    this.#log = deps.log;
    this.#telemetry = deps.telemetry ?? noTelemetry;
    this.options = { ...DEFAULT_JOBS_OPTIONS, instanceId: `jobs-${randomUUID()}`, ...options };
    this.instanceId = this.options.instanceId;
  }

  register<P>(kind: string, handler: (job: Job<P>) => Promise<void>): void {
    this.#handlers.set(kind, handler as Handler);
  }

  async schedule<P>(job: Omit<Job<P>, 'runAt'> & { runAt: Date }): Promise<void> {
    if (!JOB_ID.test(job.id)) throw new AppError('validation_failed', `"${job.id}" is not a valid job id (letters, digits, . _ : @ -, at most 200)`);
    if (!job.kind) throw new AppError('validation_failed', 'a job needs a kind');
    if (!job.school || job.school === GLOBAL_PARTITION) throw new AppError('validation_failed', 'a job belongs to one school');
    if (Number.isNaN(job.runAt.getTime())) throw new AppError('validation_failed', 'a job needs a valid runAt');
    const runAt = job.runAt.toISOString();
    const generation = randomUUID();
    const now = new Date().toISOString();
    // The index entry first: a crash before the job is written leaves an entry the runner drops.
    await this.#store.upsert<DueEntry>(dueKey(runAt, job.school, job.id), { school: job.school, id: job.id, generation, runAt });
    let previous: JobRecord | undefined;
    await mutate<JobRecord<P>>(this.#store, jobKey(job.school, job.id), (current) => {
      previous = current as JobRecord | undefined;
      return { id: job.id, kind: job.kind, school: job.school, runAt, payload: job.payload, state: 'pending', attempts: 0, generation, createdAt: current?.createdAt ?? now };
    });
    if (previous && previous.runAt !== runAt) await this.#store.delete(dueKey(previous.runAt, job.school, job.id)).catch(() => undefined);
    this.#waker?.wake();
  }

  async cancel(school: string, id: string): Promise<boolean> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const record = await this.#store.get<JobRecord>(jobKey(school, id));
      if (!record) return false;
      try {
        await this.#store.delete(record, record.etag);
      } catch (error) {
        if (isRace(error)) continue;
        throw error;
      }
      await this.#store.delete(dueKey(record.data.runAt, school, id)).catch(() => undefined);
      return record.data.state !== 'failed';
    }
    throw new AppError('precondition_failed', `job ${id} kept changing; not cancelled`);
  }

  /** The job as stored (pending, running or failed); undefined once it has run. */
  async get<P = unknown>(school: string, id: string): Promise<JobRecord<P> | undefined> {
    return (await this.#store.get<JobRecord<P>>(jobKey(school, id)))?.data;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Starts the runner; resolves once the first look at the due index is done (its jobs then run in the background). */
  start(): Promise<void> {
    if (this.#running) return Promise.resolve();
    this.#running = true;
    this.#stopping = false;
    this.#abort = new AbortController();
    this.#waker = new Waker(this.#abort.signal);
    let firstLook!: () => void;
    const looked = new Promise<void>((resolve) => (firstLook = resolve));
    this.#loop = this.#run(firstLook);
    return looked;
  }

  /** Stops listing; waits for handlers in progress (a handler still running after `graceMs` keeps its lease, and another instance takes the job over when it expires). */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#running) return;
    this.#stopping = true;
    this.#abort.abort();
    const done = Promise.allSettled([this.#loop, ...this.#inflight]);
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    this.#running = false;
  }

  /** One look at the due index: runs what is due (`listed` is called once it has looked). Returns when to look again. */
  async runDue(listed?: () => void): Promise<number> {
    const now = Date.now();
    const entries = await this.#store.list<DueEntry>('job-due', GLOBAL_PARTITION, { limit: this.options.batch });
    listed?.();
    const due = entries.filter((entry) => Date.parse(entry.data.runAt) <= now);
    const later = entries.find((entry) => Date.parse(entry.data.runAt) > now);
    let consumed = 0;
    await forEachLimit(due, this.options.concurrency, async (entry) => {
      if (this.#stopping) return;
      const run = this.#runOne(entry).then(
        (done) => {
          if (done) consumed++;
        },
        (error) => this.#log.error({ err: errorName(error) }, 'job runner failed on one job'),
      );
      this.#inflight.add(run);
      await run.finally(() => this.#inflight.delete(run));
    });
    // A full batch, all due, some of it handled: more may be due right behind it. (Entries left in
    // place, a job running elsewhere or of a kind this version does not know, wait for the next poll.)
    if (due.length === entries.length && entries.length === this.options.batch && consumed > 0) return Date.now();
    return later ? Date.parse(later.data.runAt) : Infinity;
  }

  async #run(firstLook: () => void): Promise<void> {
    while (!this.#stopping) {
      let next = Date.now() + this.options.pollMs;
      try {
        next = Math.min(next, await this.runDue(firstLook));
      } catch (error) {
        this.#log.warn({ err: errorName(error) }, 'job runner could not list due jobs');
      }
      firstLook(); // (after a failed listing too; resolving twice is harmless)
      await this.#waker!.sleep(Math.max(0, next - Date.now()));
    }
    firstLook();
  }

  /** Runs one due entry; true when the entry was dealt with (run, retried, failed or found stale). */
  async #runOne(entry: StoredRecord<DueEntry>): Promise<boolean> {
    const { school, id, runAt } = entry.data;
    const record = await this.#store.get<JobRecord>(jobKey(school, id));
    // The entry is the job's as long as their run times agree (the time is in the entry's id). Not
    // the generation: two schedules of one job at the same millisecond share one entry, and whichever
    // wrote the entry last need not be the one whose job write won.
    if (!record || record.data.runAt !== runAt || record.data.state === 'failed') {
      // Stale: the job ran, was rescheduled or cancelled, or gave up.
      await this.#store.delete(entry, entry.etag).catch(() => undefined);
      return true;
    }
    const now = Date.now();
    if (record.data.state === 'running' && record.data.lease && Date.parse(record.data.lease.until) > now) return false;
    const handler = this.#handlers.get(record.data.kind);
    if (!handler) {
      // Another instance (a newer version) may know it; say so once.
      if (!this.#unknownKinds.has(record.data.kind)) this.#log.warn({ kind: record.data.kind }, 'no handler registered for this kind of job');
      this.#unknownKinds.add(record.data.kind);
      return false;
    }
    const claimed = await replaceIfUnchanged(this.#store, record, {
      ...record.data,
      state: 'running',
      attempts: record.data.attempts + 1,
      lease: { owner: this.instanceId, until: new Date(now + this.options.leaseMs).toISOString() },
    });
    if (!claimed) return false; // another instance claimed it
    const job: Job<unknown> = { school, id, kind: claimed.data.kind, runAt, payload: claimed.data.payload, attempt: claimed.data.attempts };
    const started = performance.now();
    const ran = (outcome: 'done' | 'failed') => this.#telemetry.job({ school, kind: job.kind, outcome, durationMs: Math.round(performance.now() - started), attempt: claimed.data.attempts });
    try {
      await handler(job);
    } catch (error) {
      ran('failed');
      this.#telemetry.error({ where: 'job', code: isAppError(error) ? error.code : 'internal', name: error instanceof Error ? error.name : typeof error, school });
      await this.#failed(entry, claimed, error);
      return true;
    }
    ran('done');
    // Done: delete the job unless the handler (or anyone) rescheduled it meanwhile.
    try {
      await this.#store.delete(claimed, claimed.etag);
    } catch (error) {
      if (!isAppError(error, 'precondition_failed')) throw error;
    }
    await this.#store.delete(entry, entry.etag).catch(() => undefined);
    return true;
  }

  async #failed(entry: StoredRecord<DueEntry>, claimed: StoredRecord<JobRecord>, error: unknown): Promise<void> {
    const { school, id, kind, attempts } = claimed.data;
    const lastError = errorName(error);
    if (attempts >= this.options.maxAttempts) {
      // Kept as failed for inspection (unless the handler already scheduled its next run).
      await replaceIfUnchanged(this.#store, claimed, { ...claimed.data, state: 'failed', lease: undefined, lastError });
      await this.#store.delete(entry, entry.etag).catch(() => undefined);
      this.#log.error({ kind, school, attempts, err: lastError }, 'job failed; not retried again');
      return;
    }
    const runAt = new Date(Date.now() + backoffMs(attempts, this.options.retryBaseMs, this.options.retryMaxMs)).toISOString();
    await this.#store.upsert<DueEntry>(dueKey(runAt, school, id), { school, id, generation: claimed.data.generation, runAt });
    const retried = await replaceIfUnchanged(this.#store, claimed, { ...claimed.data, state: 'pending', runAt, lease: undefined, lastError });
    if (!retried) {
      // Rescheduled or cancelled while it ran: the new schedule stands.
      await this.#store.delete(dueKey(runAt, school, id)).catch(() => undefined);
      return;
    }
    await this.#store.delete(entry, entry.etag).catch(() => undefined);
    this.#log.warn({ kind, school, attempts, err: lastError }, 'job failed; will retry');
  }
}

// ---------------------------------------------------------------- working hours and recurring work

export interface WorkingHours {
  /** Days of the week (0 Sunday … 6 Saturday). */
  days: number[];
  /** First hour of the working day and the hour it ends (exclusive), local time. */
  start: number;
  end: number;
}

/** Monday to Friday, 08:00 to 17:00: when school staff expect messages from school. */
export const SCHOOL_HOURS: WorkingHours = { days: [1, 2, 3, 4, 5], start: 8, end: 17 };
export const DEFAULT_TIME_ZONE = 'Europe/London';

const weekdays: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Whether `at` falls in working hours in `timeZone`. */
export function inWorkingHours(at: Date, timeZone: string = DEFAULT_TIME_ZONE, hours: WorkingHours = SCHOOL_HOURS): boolean {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', hour: 'numeric', hourCycle: 'h23' }).formatToParts(at);
  const day = weekdays[parts.find((p) => p.type === 'weekday')?.value ?? ''] ?? -1;
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  return hours.days.includes(day) && hour >= hours.start && hour < hours.end;
}

/** `at` itself when it is in working hours, else the start of the next working period (in `timeZone`). */
export function nextWorkingTime(at: Date, timeZone: string = DEFAULT_TIME_ZONE, hours: WorkingHours = SCHOOL_HOURS): Date {
  if (inWorkingHours(at, timeZone, hours)) return at;
  const next = new Cron(`0 ${hours.start} * * ${hours.days.join(',')}`, { timezone: timeZone, paused: true }).nextRun(at);
  if (!next) throw new AppError('internal', 'no working time ahead');
  return next;
}

/** The next time a cron pattern matches after `after`, in `timeZone`. */
export function nextOccurrence(pattern: string, timeZone: string = DEFAULT_TIME_ZONE, after: Date = new Date()): Date {
  const next = new Cron(pattern, { timezone: timeZone, paused: true }).nextRun(after);
  if (!next) throw new AppError('validation_failed', `the schedule "${pattern}" never runs again`);
  return next;
}

export interface RecurringDefinition<P> {
  /** The job kind (also the default job id, one per school). */
  kind: string;
  /** Cron pattern in the school's local time; by default 09:00 on school days. */
  pattern?: string;
  /** The school's time zone (its record's `timeZone`, Europe/London when unset). */
  timeZone(school: string): Promise<string> | string;
  /** Moves each run into working hours (a pattern that already is, like the default, is unchanged). */
  workingHours?: WorkingHours | false;
  handler(job: Job<P>): Promise<void>;
}

export interface Recurring<P> {
  /** Schedules the next run for the school unless one is scheduled already (safe at every start-up). */
  ensure(school: string, options?: { id?: string; payload?: P }): Promise<void>;
  /** When the next run after `after` would be, for the school. */
  next(school: string, after?: Date): Promise<Date>;
}

/**
 * Recurring work over durable jobs: registers `kind` and, after each run (or the run's final
 * failure), schedules the next occurrence of `pattern` in the school's time zone, within working
 * hours. Review reminders, acknowledgement reminders and retention sweeps register one each and
 * call `ensure(school)` when a school starts to need it.
 */
export function recurring<P = Record<string, unknown>>(jobs: Jobs, definition: RecurringDefinition<P>): Recurring<P> {
  const pattern = definition.pattern ?? '0 9 * * 1-5';
  nextOccurrence(pattern, DEFAULT_TIME_ZONE); // a bad pattern fails at registration, not at the first run
  const next = async (school: string, after = new Date()) => {
    const timeZone = (await definition.timeZone(school)) || DEFAULT_TIME_ZONE;
    const at = nextOccurrence(pattern, timeZone, after);
    return definition.workingHours === false ? at : nextWorkingTime(at, timeZone, definition.workingHours ?? SCHOOL_HOURS);
  };
  const scheduleNext = async (job: Job<P>) => jobs.schedule<P>({ school: job.school, id: job.id, kind: definition.kind, payload: job.payload, runAt: await next(job.school) });
  jobs.register<P>(definition.kind, async (job) => {
    try {
      await definition.handler(job);
    } catch (error) {
      // The last attempt: the series goes on with the next occurrence regardless.
      if ((job.attempt ?? 1) >= jobs.options.maxAttempts) await scheduleNext(job);
      throw error;
    }
    await scheduleNext(job);
  });
  return {
    next,
    ensure: async (school, options = {}) => {
      const id = options.id ?? definition.kind;
      const existing = await jobs.get(school, id);
      if (existing && existing.state !== 'failed') return;
      await jobs.schedule<P>({ school, id, kind: definition.kind, payload: options.payload ?? ({} as P), runAt: await next(school) });
    },
  };
}

function errorName(error: unknown): string {
  if (error instanceof AppError) return error.code;
  return error instanceof Error ? error.name : typeof error;
}
