/**
 * The durable outbox (MessageQueue): one record per message and recipient, sent by a worker loop in
 * every server process, within the platforms' rate limits, surviving crashes and restarts.
 *
 * Records (see docs/delivery.md for the whole design and its guarantees):
 *
 * | kind | partition | id | what |
 * |---|---|---|---|
 * | `outbox` | school | `<broadcast>:<chunk 6>:<index 7>` | one message to one recipient: state, attempts, notBefore, lease |
 * | `outbox-chunk` | school | `<broadcast>:<chunk 6>` | a chunk of items (100): who is working on it (lease), its summary once done |
 * | `outbox-broadcast` | school | `<broadcast>` | total, chunks, notBefore, state, the message when every recipient gets the same |
 * | `outbox-index` | school | `active` | the school's broadcasts not yet complete |
 * | `outbox-pause` | school | `school` | the school's sending is paused until (a 429) |
 * | `outbox-schools` | `_global` | school | schools with active broadcasts (what workers poll) |
 * | `outbox-instance` | `_global` | instance | heartbeat: live instances share the rate limits |
 *
 * Exactly-once is impossible (neither platform takes an idempotency key). An item is claimed
 * (pending → inflight, with a lease, by etag: one winner across instances) right before it is sent
 * and marked delivered right after; at most `concurrency` items per process are claimed at once, so
 * a crash re-sends at most that many (their leases expire and they are sent again).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { AppError, isAppError } from '../errors.ts';
import type { UserRecord } from '../bot/directory.ts';
import type { Platform } from '../bot/inbound.ts';
import type { Reply } from '../bot/reply.ts';
import type { Logger } from '../logger.ts';
import { GLOBAL_PARTITION, type Store, type StoredRecord } from '../store/store.ts';
import { classifyDeliveryFailure } from './classify.ts';
import { backoffMs, forEachLimit, KeyedRateLimiter, RateLimiter, Semaphore, sleep, Waker } from './limits.ts';
import { createIfAbsent, isRace, mutate, replaceIfUnchanged } from './store-helpers.ts';
import {
  DeliveryError,
  type BroadcastProgress,
  type DeliveryFailureKind,
  type EnqueueOptions,
  type MessageQueue,
  type OutboundMessage,
} from './types.ts';

export type ItemState = 'pending' | 'inflight' | 'delivered' | 'failed' | 'cancelled';
const FINAL: ReadonlySet<ItemState> = new Set(['delivered', 'failed', 'cancelled']);

export interface Lease {
  owner: string;
  until: string;
}

export interface OutboxItem {
  broadcastId: string;
  recipient: string;
  /** Inline when the broadcast's messages differ; otherwise on the broadcast record. */
  replies?: Reply[];
  state: ItemState;
  /** Sends started (a send answered 429 is not counted: it was refused, not attempted). */
  attempts: number;
  /** Times the platform answered 429 for this item. */
  throttled: number;
  /** Times the item was taken over after its lease expired (a crash): it may have been sent twice. */
  recovered: number;
  notBefore: string;
  lease?: Lease;
  /** Permanent failure reason, or the last transient one. Fixed wording, never message content. */
  reason?: string;
  status?: number;
  createdAt: string;
  deliveredAt?: string;
  finishedAt?: string;
}

export interface ChunkRecord {
  broadcastId: string;
  chunk: number;
  state: 'open' | 'done';
  lease?: Lease;
  summary?: { delivered: number; failed: number; cancelled: number; failures: Array<{ recipient: string; reason: string }> };
}

export type BroadcastState = 'creating' | 'active' | 'cancelled' | 'complete';

export interface BroadcastRecord {
  id: string;
  total: number;
  chunks: number;
  chunkSize: number;
  notBefore: string;
  createdAt: string;
  state: BroadcastState;
  /** The message, when every recipient gets the same one. */
  replies?: Reply[];
  /** What asked for it (e.g. "qa.escalation", "alert"), for reports. */
  origin?: string;
  cancelledAt?: string;
  completedAt?: string;
}

export interface IndexRecord {
  broadcasts: Array<{ id: string; notBefore: string }>;
}

export interface PauseRecord {
  until: string;
  consecutive: number;
  reason: DeliveryFailureKind;
  by: string;
  at: string;
}

interface InstanceRecord {
  until: string;
  startedAt: string;
}

export interface PlatformRate {
  /** Requests a second for the whole school (one Teams tenant, one Slack workspace), shared by live instances. */
  perSecond: number;
  /** Requests allowed at once after a quiet spell. */
  burst: number;
  /** Requests a second into one conversation (one person's chat). */
  perConversationPerSecond: number;
  perConversationBurst: number;
}

/**
 * Defaults with headroom under the published limits. Teams: about 30 requests a second for one app
 * in one tenant; per conversation 7 a second, 8 in 2 s, 60 in 30 s, 1,800 an hour (a burst of 7,
 * then one every 2 s keeps within every window). Slack: chat.postMessage about 1 a second per channel.
 */
export const DEFAULT_RATES: Record<Platform, PlatformRate> = {
  teams: { perSecond: 25, burst: 5, perConversationPerSecond: 0.5, perConversationBurst: 7 },
  playground: { perSecond: 25, burst: 5, perConversationPerSecond: 0.5, perConversationBurst: 7 },
  slack: { perSecond: 20, burst: 5, perConversationPerSecond: 1, perConversationBurst: 1 },
  terminal: { perSecond: 100, burst: 10, perConversationPerSecond: 10, perConversationBurst: 10 },
};

export interface OutboxOptions {
  /** Names this process in leases and heartbeats; random by default (one per process). */
  instanceId: string;
  /** Items claimed (in flight) at once in this process: the most a crash can re-send. */
  concurrency: number;
  /** Items per chunk (the unit of listing, leasing and progress summaries). */
  chunkSize: number;
  /** How long a claim (item) or a chunk lease lasts; a crashed process's items are re-sent after this. */
  leaseMs: number;
  /** A send taking longer counts as a transient failure (it may still arrive: a possible duplicate). */
  sendTimeoutMs: number;
  /** While sending: how often a school's index is re-read (new broadcasts join) and leases re-checked. */
  pollMs: number;
  /**
   * While idle: how often the worker looks for work enqueued elsewhere (another instance, the command
   * line) or orphaned by a crash. Work enqueued in this process starts at once.
   */
  idlePollMs: number;
  /** How often the shared pause record is re-read (how soon another instance's 429 is honoured). */
  pauseCheckMs: number;
  heartbeatMs: number;
  /** Sends started before a transiently failing item is marked failed. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Pause after a 429 without Retry-After: exponential from this, with jitter. */
  throttleBaseMs: number;
  /** No pause lasts longer than this, whatever Retry-After says. */
  maxPauseMs: number;
  /** This many transient failures in a row (no success between) pause the school like a 429. */
  transientPauseAfter: number;
  /** Longest wait for a conversation's own limit while holding a claim; longer, the item is put back. */
  maxConversationWaitMs: number;
  enqueueConcurrency: number;
  rates: Partial<Record<Platform, Partial<PlatformRate>>>;
}

export const DEFAULT_OUTBOX_OPTIONS: Omit<OutboxOptions, 'instanceId'> = {
  concurrency: 16,
  chunkSize: 100,
  leaseMs: 30_000,
  sendTimeoutMs: 15_000,
  pollMs: 1000,
  idlePollMs: 15_000,
  pauseCheckMs: 1000,
  heartbeatMs: 2000,
  maxAttempts: 8,
  retryBaseMs: 2000,
  retryMaxMs: 300_000,
  throttleBaseMs: 1000,
  maxPauseMs: 900_000,
  transientPauseAfter: 5,
  maxConversationWaitMs: 2000,
  enqueueConcurrency: 16,
  rates: {},
};

export interface OutboxDeps {
  store: Store;
  log: Logger;
  /** The recipient's directory record (platform and conversation reference); undefined when unknown. */
  recipient(school: string, userId: string): Promise<UserRecord | undefined>;
  /** Sends, or throws: a DeliveryError, or anything classifyDeliveryFailure can read. */
  send(school: string, user: UserRecord, replies: Reply[]): Promise<void>;
}

export interface OutboxStats {
  claimed: number;
  delivered: number;
  failed: number;
  retried: number;
  throttled: number;
  /** Pauses this instance started (a 429 when the school was not paused already). */
  pausesStarted: number;
  /** Items taken over after their lease expired. */
  recovered: number;
  /** Most items in flight at once in this process. */
  maxInflight: number;
  inflight: number;
}

const INDEX_ID = 'active';
const PAUSE_ID = 'school';
const BROADCAST_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

const pad = (n: number, width: number) => String(n).padStart(width, '0');
export const chunkPrefix = (broadcastId: string, chunk: number) => `${broadcastId}:${pad(chunk, 6)}:`;
const itemId = (broadcastId: string, chunk: number, index: number) => `${chunkPrefix(broadcastId, chunk)}${pad(index, 7)}`;
const chunkId = (broadcastId: string, chunk: number) => `${broadcastId}:${pad(chunk, 6)}`;

const itemKey = (school: string, id: string) => ({ kind: 'outbox', school, id });
const chunkKey = (school: string, broadcastId: string, chunk: number) => ({ kind: 'outbox-chunk', school, id: chunkId(broadcastId, chunk) });
const broadcastKey = (school: string, id: string) => ({ kind: 'outbox-broadcast', school, id });
const indexKey = (school: string) => ({ kind: 'outbox-index', school, id: INDEX_ID });
const pauseKey = (school: string) => ({ kind: 'outbox-pause', school, id: PAUSE_ID });
const schoolsKey = (school: string) => ({ kind: 'outbox-schools', school: GLOBAL_PARTITION, id: school });
const instanceKey = (id: string) => ({ kind: 'outbox-instance', school: GLOBAL_PARTITION, id });

/** A broadcast id that sorts by creation time: `b<UTC time to the millisecond>-<random>`. */
export function newBroadcastId(now = new Date()): string {
  return `b${now.toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`;
}

const iso = (ms: number) => new Date(ms).toISOString();
const leaseLive = (lease: Lease | undefined, now: number) => lease !== undefined && Date.parse(lease.until) > now;

interface PauseState {
  until: number;
  consecutive: number;
  checkedAt: number;
  reading?: Promise<void>;
  transientRun: number;
}

export class Outbox implements MessageQueue {
  readonly instanceId: string;
  readonly options: OutboxOptions;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #deps: OutboxDeps;
  #abort = new AbortController();
  #running = false;
  #stopping = false;
  #loop?: Promise<void>;
  #loopWaker?: Waker;
  readonly #pumps = new Map<string, SchoolPump>();
  #slots: Semaphore;
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #limiters = new Map<string, RateLimiter>();
  readonly #conversationLimiters = new Map<Platform, KeyedRateLimiter>();
  readonly #pauses = new Map<string, PauseState>();
  #liveInstances = 1;
  #lastHeartbeat = 0;
  readonly #stats: OutboxStats = { claimed: 0, delivered: 0, failed: 0, retried: 0, throttled: 0, pausesStarted: 0, recovered: 0, maxInflight: 0, inflight: 0 };

  constructor(deps: OutboxDeps, options: Partial<OutboxOptions> = {}) {
    this.#deps = deps;
    this.#store = deps.store;
    this.#log = deps.log;
    this.options = { ...DEFAULT_OUTBOX_OPTIONS, instanceId: `outbox-${randomUUID()}`, ...options };
    this.instanceId = this.options.instanceId;
    if (this.options.sendTimeoutMs >= this.options.leaseMs) throw new AppError('config_invalid', 'outbox sendTimeoutMs must be shorter than leaseMs');
    this.#slots = new Semaphore(this.options.concurrency);
  }

  // ---------------------------------------------------------------- the queue (any process)

  async enqueue(school: string, messages: OutboundMessage[], options: EnqueueOptions & { origin?: string } = {}): Promise<{ broadcastId: string; count: number }> {
    const broadcastId = options.broadcastId ?? newBroadcastId();
    if (!BROADCAST_ID.test(broadcastId)) throw new AppError('validation_failed', `"${broadcastId}" is not a valid broadcast id (letters, digits, . _ @ -, at most 100)`);
    if (messages.length === 0) return { broadcastId, count: 0 };
    for (const message of messages) {
      if (!message.recipient) throw new AppError('validation_failed', 'every message needs a recipient');
      if (!Array.isArray(message.replies) || message.replies.length === 0) throw new AppError('validation_failed', 'every message needs something to send');
    }
    const { chunkSize } = this.options;
    const notBefore = (options.notBefore ?? new Date()).toISOString();
    const shared = sameReplies(messages);
    const chunks = Math.ceil(messages.length / chunkSize);

    const existing = await this.#store.get<BroadcastRecord>(broadcastKey(school, broadcastId));
    if (existing && existing.data.state !== 'creating') return { broadcastId, count: existing.data.total };
    if (existing && existing.data.total !== messages.length) {
      throw new AppError('conflict', `broadcast ${broadcastId} exists already with ${existing.data.total} recipients`);
    }
    const now = new Date().toISOString();
    const broadcast: BroadcastRecord = {
      id: broadcastId,
      total: messages.length,
      chunks,
      chunkSize,
      notBefore,
      createdAt: existing?.data.createdAt ?? now,
      state: 'creating',
      replies: shared ? messages[0]!.replies : undefined,
      origin: options.origin,
    };
    // The broadcast (creating) and its index entry first, then chunk by chunk its items and the
    // chunk's record: workers only see a chunk once its record exists, so they start on the first
    // chunks while the later ones are still being written. A crash part-way leaves the broadcast
    // `creating` (its finished chunks may be sent); enqueueing again with the same id completes it
    // (every create is idempotent). Only then is it `active`, and complete once every chunk is done.
    if (!existing) await createIfAbsent(this.#store, broadcastKey(school, broadcastId), broadcast);
    await mutate<IndexRecord>(this.#store, indexKey(school), (current) => {
      const broadcasts = current?.broadcasts ?? [];
      if (broadcasts.some((b) => b.id === broadcastId)) return undefined;
      return { broadcasts: [...broadcasts, { id: broadcastId, notBefore }] };
    });
    // After the index: a worker retiring the school checks this record's etag before the index.
    await this.#store.upsert(schoolsKey(school), { school, at: now });
    for (let chunk = 0; chunk < chunks; chunk++) {
      const first = chunk * chunkSize;
      await forEachLimit(messages.slice(first, first + chunkSize), this.options.enqueueConcurrency, async (message, offset) => {
        const item: OutboxItem = {
          broadcastId,
          recipient: message.recipient,
          replies: shared ? undefined : message.replies,
          state: 'pending',
          attempts: 0,
          throttled: 0,
          recovered: 0,
          notBefore,
          createdAt: now,
        };
        await createIfAbsent(this.#store, itemKey(school, itemId(broadcastId, chunk, first + offset)), item);
      });
      await createIfAbsent<ChunkRecord>(this.#store, chunkKey(school, broadcastId, chunk), { broadcastId, chunk, state: 'open' });
      if (chunk === 0) this.wake(school);
      // A store that answers synchronously (SQLite) would otherwise hold sockets and timers (this
      // process's sending, its other requests) until the whole broadcast is written.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await mutate<BroadcastRecord>(this.#store, broadcastKey(school, broadcastId), (current) => (current && current.state === 'creating' ? { ...current, state: 'active' } : undefined));
    this.wake(school);
    return { broadcastId, count: messages.length };
  }

  async progress(school: string, broadcastId: string): Promise<BroadcastProgress & { state: BroadcastState; notBefore: string }> {
    const broadcast = await this.#store.get<BroadcastRecord>(broadcastKey(school, broadcastId));
    if (!broadcast) throw new AppError('not_found', `No broadcast ${broadcastId}`);
    const progress: BroadcastProgress & { state: BroadcastState; notBefore: string } = {
      total: broadcast.data.total,
      pending: 0,
      inflight: 0,
      delivered: 0,
      failed: 0,
      cancelled: 0,
      failures: [],
      state: broadcast.data.state,
      notBefore: broadcast.data.notBefore,
    };
    const chunks = await this.#store.list<ChunkRecord>('outbox-chunk', school, { idPrefix: `${broadcastId}:` });
    const open: number[] = [];
    for (const chunk of chunks) {
      if (chunk.data.state === 'done' && chunk.data.summary) {
        progress.delivered += chunk.data.summary.delivered;
        progress.failed += chunk.data.summary.failed;
        progress.cancelled += chunk.data.summary.cancelled;
        progress.failures.push(...chunk.data.summary.failures);
      } else open.push(chunk.data.chunk);
    }
    // Mostly open (early on): one query for every item; else one per open chunk.
    const items =
      open.length > chunks.length / 2
        ? (await this.#store.list<OutboxItem>('outbox', school, { idPrefix: `${broadcastId}:` })).filter((item) => open.includes(chunkOfItem(item.id)))
        : (await Promise.all(open.map((chunk) => this.#store.list<OutboxItem>('outbox', school, { idPrefix: chunkPrefix(broadcastId, chunk) })))).flat();
    for (const item of items) {
      const state = item.data.state;
      progress[state]++;
      if (state === 'failed') progress.failures.push({ recipient: item.data.recipient, reason: item.data.reason ?? 'unknown' });
    }
    // Still being written (or its enqueue was cut short): what is not written yet is pending.
    const counted = progress.pending + progress.inflight + progress.delivered + progress.failed + progress.cancelled;
    const unwritten = Math.max(0, progress.total - counted);
    if (broadcast.data.state === 'cancelled') progress.cancelled += unwritten;
    else progress.pending += unwritten;
    return progress;
  }

  async cancel(school: string, broadcastId: string): Promise<number> {
    let changed = false;
    const updated = await mutate<BroadcastRecord>(this.#store, broadcastKey(school, broadcastId), (current) => {
      changed = Boolean(current && (current.state === 'active' || current.state === 'creating'));
      return changed ? { ...current!, state: 'cancelled', cancelledAt: new Date().toISOString() } : undefined;
    });
    if (!updated) throw new AppError('not_found', `No broadcast ${broadcastId}`);
    if (!changed) return 0; // complete, or cancelled before
    this.#pumps.get(school)?.forgetBroadcast(broadcastId);
    // Items not yet claimed are cancelled one by one (by etag: a worker claiming one at the same
    // moment wins or loses cleanly); items in flight are sent, as they may be on their way already.
    // Workers that see the broadcast cancelled cancel what they meet too (and finish the job if
    // this call is cut short), so the count is read back at the end.
    const chunks = await this.#store.list<ChunkRecord>('outbox-chunk', school, { idPrefix: `${broadcastId}:` });
    for (const chunk of chunks) {
      if (chunk.data.state === 'done') continue;
      const items = await this.#store.list<OutboxItem>('outbox', school, { idPrefix: chunkPrefix(broadcastId, chunk.data.chunk) });
      await forEachLimit(items, this.options.enqueueConcurrency, async (item) => {
        await this.#cancelItem(item);
      });
    }
    this.wake(school);
    return (await this.progress(school, broadcastId)).cancelled;
  }

  /** Moves a pending item to cancelled; true when this call did it. */
  async #cancelItem(item: StoredRecord<OutboxItem>): Promise<boolean> {
    let current: StoredRecord<OutboxItem> | undefined = item;
    for (let attempt = 0; current && attempt < 5; attempt++) {
      if (current.data.state !== 'pending') return false;
      const done = await replaceIfUnchanged(this.#store, current, { ...current.data, state: 'cancelled', finishedAt: new Date().toISOString() });
      if (done) return true;
      current = await this.#store.get<OutboxItem>(item);
    }
    return false;
  }

  /**
   * Deletes the per-recipient items of a finished broadcast (for a retention job): the broadcast
   * record and its chunk summaries stay, so progress (counts and permanent failures) still reads
   * the same. Refused while anything of it may still be sent. Returns how many items were deleted.
   */
  async purge(school: string, broadcastId: string): Promise<number> {
    const broadcast = await this.#store.get<BroadcastRecord>(broadcastKey(school, broadcastId));
    if (!broadcast) throw new AppError('not_found', `No broadcast ${broadcastId}`);
    if (!broadcast.data.completedAt) throw new AppError('conflict', `broadcast ${broadcastId} is not finished`);
    let deleted = 0;
    for (;;) {
      const items = await this.#store.list<OutboxItem>('outbox', school, { idPrefix: `${broadcastId}:`, limit: 500 });
      if (items.length === 0) return deleted;
      await forEachLimit(items, this.options.enqueueConcurrency, async (item) => {
        if (await this.#store.delete(item)) deleted++;
      });
    }
  }

  /**
   * The retention sweep: every broadcast of the school that finished before `before` loses what it
   * held about people and what was said (its per-recipient items, and the shared message on the
   * broadcast record); the counts and permanent failures in its chunk summaries stay, so progress
   * still reads the same. Idempotent: a sweep cut short is finished by the next one.
   */
  async purgeFinished(school: string, before: Date): Promise<{ broadcasts: number; items: number }> {
    let broadcasts = 0;
    let items = 0;
    for (const record of await this.#store.list<BroadcastRecord>('outbox-broadcast', school)) {
      const finishedAt = record.data.completedAt;
      if (!finishedAt || Date.parse(finishedAt) >= before.getTime()) continue;
      const deleted = await this.purge(school, record.id);
      items += deleted;
      if (record.data.replies !== undefined) {
        const { replies: _replies, ...kept } = record.data;
        // By etag: a record changed meanwhile (or gone) is left for the next sweep.
        await replaceIfUnchanged(this.#store, record, kept);
      }
      if (deleted > 0 || record.data.replies !== undefined) broadcasts++;
    }
    return { broadcasts, items };
  }

  /**
   * True when nothing of the school's is waiting or in flight (broadcasts scheduled for later
   * aside): every due item delivered, failed or cancelled. For tests and for draining.
   */
  async settled(school: string): Promise<boolean> {
    const index = await this.#store.get<IndexRecord>(indexKey(school));
    if (!index) return true;
    for (const entry of index.data.broadcasts) {
      if (Date.parse(entry.notBefore) > Date.now()) continue;
      const progress = await this.progress(school, entry.id).catch(() => undefined);
      if (progress && progress.pending + progress.inflight > 0) return false;
    }
    return true;
  }

  stats(): OutboxStats {
    return { ...this.#stats };
  }

  // ---------------------------------------------------------------- the worker (server processes)

  get running(): boolean {
    return this.#running;
  }

  /** Starts the worker; resolves once it has looked for work (which then goes on in the background). */
  start(): Promise<void> {
    if (this.#running) return Promise.resolve();
    this.#running = true;
    this.#stopping = false;
    this.#abort = new AbortController();
    // Every sleeping worker listens for the stop: more than Node's default ten at once is normal here.
    setMaxListeners(0, this.#abort.signal);
    this.#loopWaker = new Waker(this.#abort.signal);
    let firstLook!: () => void;
    const looked = new Promise<void>((resolve) => (firstLook = resolve));
    this.#loop = this.#mainLoop(firstLook);
    return looked;
  }

  /** Stops claiming, lets sends in flight finish (at most sendTimeoutMs), releases what it holds. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#stopping = true;
    this.#abort.abort();
    await this.#loop;
    // Sends time out after sendTimeoutMs; a store that stopped answering must not hold the shutdown
    // for ever (what is left in flight is re-sent by another instance once its lease expires).
    const drained = (async () => {
      await Promise.allSettled([...this.#pumps.values()].map((pump) => pump.done));
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
      await this.#store.delete(instanceKey(this.instanceId)).catch(() => undefined);
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((resolve) => (timer = setTimeout(resolve, this.options.sendTimeoutMs + 5000)))]);
    clearTimeout(timer);
    this.#running = false;
  }

  /** Looks for work now (this process): after an enqueue or a cancel. */
  wake(school?: string): void {
    if (!this.#running || this.#stopping) return;
    if (school) {
      const pump = this.#pumps.get(school);
      if (pump) pump.wake();
      else this.#startPump(school);
    } else this.#loopWaker?.wake();
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get store(): Store {
    return this.#store;
  }

  get log(): Logger {
    return this.#log;
  }

  async #mainLoop(firstLook: () => void): Promise<void> {
    await this.#sweep().catch((error) => this.#log.warn({ err: errorName(error) }, 'outbox start-up sweep failed'));
    let first = true;
    while (!this.#stopping) {
      try {
        // Only instances that are sending count towards the rate share.
        if (this.#pumps.size > 0) await this.#heartbeat();
        const schools = await this.#store.list<{ school: string }>('outbox-schools', GLOBAL_PARTITION);
        for (const record of schools) if (!this.#pumps.has(record.id)) this.#startPump(record.id);
      } catch (error) {
        this.#log.warn({ err: errorName(error) }, 'outbox poll failed');
      }
      if (first) {
        first = false;
        firstLook();
      }
      await this.#loopWaker!.sleep(this.#pumps.size > 0 ? Math.min(this.options.pollMs, this.options.heartbeatMs) : this.options.idlePollMs);
    }
    if (first) firstLook();
  }

  /** At start: any school with an index but no entry in outbox-schools (an enqueue cut short) gets one. */
  async #sweep(): Promise<void> {
    const schools = await this.#store.list<{ id: string }>('school', GLOBAL_PARTITION);
    for (const school of schools) {
      const index = await this.#store.get<IndexRecord>(indexKey(school.id));
      if (index && index.data.broadcasts.length > 0 && !(await this.#store.get(schoolsKey(school.id)))) {
        await this.#store.upsert(schoolsKey(school.id), { school: school.id, at: new Date().toISOString() });
      }
    }
  }

  async #heartbeat(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastHeartbeat < this.options.heartbeatMs) return;
    this.#lastHeartbeat = now;
    await this.#store.upsert<InstanceRecord>(instanceKey(this.instanceId), { until: iso(now + 3 * this.options.heartbeatMs), startedAt: iso(now) });
    const instances = await this.#store.list<InstanceRecord>('outbox-instance', GLOBAL_PARTITION);
    const live = Math.max(1, instances.filter((record) => Date.parse(record.data.until) > now).length);
    if (live !== this.#liveInstances) {
      this.#liveInstances = live;
      for (const [key, limiter] of this.#limiters) limiter.setRate(this.#rate(key.split('|')[1] as Platform).perSecond / live);
      this.#log.info({ instances: live }, 'outbox rate shared between live instances');
    }
    for (const record of instances) {
      // Heartbeats of instances gone for a minute are removed (by whoever notices first).
      if (Date.parse(record.data.until) < now - 60_000) await this.#store.delete(record, record.etag).catch(() => undefined);
    }
  }

  #startPump(school: string): void {
    const pump = new SchoolPump(this, school);
    const wasIdle = this.#pumps.size === 0;
    this.#pumps.set(school, pump);
    if (wasIdle) this.#loopWaker?.wake(); // heartbeat now: this instance takes its share of the rate
    pump.done = pump.run().finally(async () => {
      if (this.#pumps.get(school) === pump) this.#pumps.delete(school);
      if (this.#pumps.size === 0 && !this.#stopping) {
        // Idle now: leave the rate to the instances still sending.
        this.#lastHeartbeat = 0;
        await this.#store.delete(instanceKey(this.instanceId)).catch(() => undefined);
      }
    });
  }

  /** Keeps a promise alive until it settles (stop() waits for every one). */
  track<T>(promise: Promise<T>): Promise<T> {
    this.#tasks.add(promise);
    void promise.finally(() => this.#tasks.delete(promise)).catch(() => undefined);
    return promise;
  }

  acquireSlot(): Promise<void> {
    return this.#slots.acquire();
  }

  releaseSlot(): void {
    this.#slots.release();
  }

  #rate(platform: Platform): PlatformRate {
    return { ...DEFAULT_RATES[platform], ...this.options.rates[platform] };
  }

  #limiter(school: string, platform: Platform): RateLimiter {
    const key = `${school}|${platform}`;
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      const rate = this.#rate(platform);
      limiter = new RateLimiter(rate.perSecond / this.#liveInstances, rate.burst);
      this.#limiters.set(key, limiter);
    }
    return limiter;
  }

  #conversationLimiter(platform: Platform): KeyedRateLimiter {
    let limiter = this.#conversationLimiters.get(platform);
    if (!limiter) {
      const rate = this.#rate(platform);
      limiter = new KeyedRateLimiter(rate.perConversationPerSecond, rate.perConversationBurst);
      this.#conversationLimiters.set(platform, limiter);
    }
    return limiter;
  }

  // ---------------------------------------------------------------- the school's pause

  #pause(school: string): PauseState {
    let state = this.#pauses.get(school);
    if (!state) {
      state = { until: 0, consecutive: 0, checkedAt: 0, transientRun: 0 };
      this.#pauses.set(school, state);
    }
    return state;
  }

  /** When the school's sending may resume (0 or past: now). Re-reads the shared record now and then. */
  async pausedUntil(school: string, fresh = false): Promise<number> {
    const state = this.#pause(school);
    if (fresh || Date.now() - state.checkedAt >= this.options.pauseCheckMs) {
      state.reading ??= (async () => {
        try {
          const record = await this.#store.get<PauseRecord>(pauseKey(school));
          if (record) {
            const until = Date.parse(record.data.until);
            if (until > state.until) {
              state.until = until;
              state.consecutive = Math.max(state.consecutive, record.data.consecutive);
            }
          }
        } catch (error) {
          this.#log.warn({ err: errorName(error) }, 'outbox pause record unreadable');
        } finally {
          state.checkedAt = Date.now();
          state.reading = undefined;
        }
      })();
      await state.reading;
    }
    return state.until;
  }

  /** Waits while the school is paused; false when stopping. */
  async waitUnpaused(school: string): Promise<boolean> {
    for (;;) {
      if (this.#stopping) return false;
      const until = await this.pausedUntil(school);
      const wait = until - Date.now();
      if (wait <= 0) return true;
      await sleep(Math.min(wait, this.options.pauseCheckMs), this.#abort.signal);
    }
  }

  /**
   * A 429 (or a run of transient failures): pauses the school for every worker of this process and,
   * through the pause record, of every instance. A 429 that comes while already paused (a send that
   * started before the pause) joins the pause rather than starting a longer one.
   */
  async pauseSchool(school: string, reason: DeliveryFailureKind, retryAfterMs: number | undefined): Promise<number> {
    const state = this.#pause(school);
    // Another instance may have paused the school a moment ago: join its pause rather than start one.
    if (state.until <= Date.now()) await this.pausedUntil(school, true);
    const now = Date.now();
    let until: number;
    if (state.until > now) {
      until = retryAfterMs !== undefined ? Math.max(state.until, now + retryAfterMs) : state.until;
    } else {
      // A throttle soon after the last pause ended backs off further; a later one starts again.
      state.consecutive = now - state.until < 60_000 ? state.consecutive + 1 : 1;
      until = now + (retryAfterMs ?? backoffMs(state.consecutive, this.options.throttleBaseMs, this.options.maxPauseMs));
      this.#stats.pausesStarted++;
      this.#log.warn({ school, reason, pauseMs: until - now, retryAfter: retryAfterMs !== undefined }, 'outbox: school sending paused');
    }
    until = Math.min(until, now + this.options.maxPauseMs);
    if (until <= state.until) return state.until;
    state.until = until;
    try {
      await mutate<PauseRecord>(this.#store, pauseKey(school), (current) =>
        current && Date.parse(current.until) >= until ? undefined : { until: iso(until), consecutive: state.consecutive, reason, by: this.instanceId, at: iso(now) },
      );
    } catch (error) {
      this.#log.warn({ err: errorName(error) }, 'outbox pause not recorded (this instance still honours it)');
    }
    return state.until;
  }

  // ---------------------------------------------------------------- one item

  /**
   * Claims the item, waits for the school's pause and rate limits, sends, records the outcome. The
   * caller holds a slot for the whole call.
   */
  async deliver(pump: SchoolPump, item: StoredRecord<OutboxItem>, broadcast: BroadcastRecord): Promise<void> {
    const school = pump.school;
    const now = Date.now();
    const recovering = item.data.state === 'inflight';
    const lease: Lease = { owner: this.instanceId, until: iso(now + this.options.leaseMs) };
    const claimed = await replaceIfUnchanged(this.#store, item, {
      ...item.data,
      state: 'inflight',
      attempts: item.data.attempts + 1,
      recovered: item.data.recovered + (recovering ? 1 : 0),
      lease,
    });
    if (!claimed) return; // another worker (or a cancel) got there first
    this.#stats.claimed++;
    if (recovering) this.#stats.recovered++;
    this.#stats.inflight++;
    this.#stats.maxInflight = Math.max(this.#stats.maxInflight, this.#stats.inflight);
    try {
      const replies = claimed.data.replies ?? broadcast.replies;
      if (!replies || replies.length === 0) {
        await this.#finish(pump, claimed, { state: 'failed', reason: 'the message body is missing' });
        return;
      }
      const user = await this.#deps.recipient(school, claimed.data.recipient);
      if (!user) {
        await this.#finish(pump, claimed, { state: 'failed', reason: 'unknown user' });
        return;
      }
      const admitted = await this.#admit(school, user, replies.length, Date.parse(lease.until));
      if (admitted !== true) {
        // Not sent: back to pending (the attempt does not count).
        await this.#finish(pump, claimed, { state: 'pending', attempts: claimed.data.attempts - 1, notBefore: iso(admitted) });
        return;
      }
      try {
        await withTimeout(this.#deps.send(school, user, replies), this.options.sendTimeoutMs);
      } catch (error) {
        await this.#failed(pump, claimed, classifyDeliveryFailure(platformName(user.platform), error));
        return;
      }
      const pause = this.#pause(school);
      pause.transientRun = 0;
      await this.#finish(pump, claimed, { state: 'delivered', deliveredAt: new Date().toISOString(), reason: undefined, status: undefined });
    } finally {
      this.#stats.inflight--;
    }
  }

  /**
   * Waits until the item may go: the school not paused, the school's and the conversation's rate
   * limits. True to send now; otherwise the time to put it back for (stopping, a long wait).
   */
  async #admit(school: string, user: UserRecord, requests: number, leaseUntil: number): Promise<true | number> {
    // The send must start early enough to end (or time out) within the claim's lease.
    const latest = leaseUntil - this.options.sendTimeoutMs;
    for (;;) {
      if (this.#stopping) return Date.now();
      const pausedUntil = await this.pausedUntil(school);
      if (pausedUntil > Date.now()) {
        if (pausedUntil > latest) return Math.max(pausedUntil, Date.now() + 10);
        await sleep(Math.min(pausedUntil - Date.now(), this.options.pauseCheckMs), this.#abort.signal);
        continue;
      }
      // Look first, book only what will be used: an item put back must not hold a place in line.
      const now = Date.now();
      const conversations = this.#conversationLimiter(user.platform);
      const conversationKey = `${school}|${user.id}`;
      const schoolLimiter = this.#limiter(school, user.platform);
      const conversationWait = conversations.peek(conversationKey, requests, now);
      const wait = Math.max(conversationWait, schoolLimiter.peek(requests, now));
      if (conversationWait > this.options.maxConversationWaitMs || now + wait > latest) return now + Math.max(wait, 10);
      conversations.reserve(conversationKey, requests, now);
      schoolLimiter.reserve(requests, now);
      if (wait > 0) {
        await sleep(wait, this.#abort.signal);
        if (this.#stopping) return Date.now();
        // A 429 may have paused the school while this one waited its turn.
        if ((await this.pausedUntil(school)) > Date.now()) continue;
      }
      // A busy process may have woken this one late: a send that could outlast the claim's lease
      // might be taken over (and sent again) by another instance, so it goes back in line instead.
      if (Date.now() > latest) return Date.now() + 10;
      return true;
    }
  }

  async #failed(pump: SchoolPump, claimed: StoredRecord<OutboxItem>, error: DeliveryError): Promise<void> {
    const school = pump.school;
    const pause = this.#pause(school);
    const data = claimed.data;
    if (error.kind === 'throttled') {
      this.#stats.throttled++;
      const until = await this.pauseSchool(school, 'throttled', error.retryAfterMs);
      // Refused, not attempted: back in line for when the pause lifts.
      await this.#finish(pump, claimed, { state: 'pending', attempts: data.attempts - 1, throttled: data.throttled + 1, notBefore: iso(until), status: error.status, reason: error.message });
      return;
    }
    if (error.kind === 'transient') {
      pause.transientRun++;
      if (pause.transientRun >= this.options.transientPauseAfter) {
        pause.transientRun = 0;
        await this.pauseSchool(school, 'transient', error.retryAfterMs);
      }
      if (data.attempts < this.options.maxAttempts) {
        this.#stats.retried++;
        const delay = Math.max(error.retryAfterMs ?? 0, backoffMs(data.attempts, this.options.retryBaseMs, this.options.retryMaxMs));
        await this.#finish(pump, claimed, { state: 'pending', notBefore: iso(Date.now() + delay), status: error.status, reason: error.message });
        return;
      }
      await this.#finish(pump, claimed, { state: 'failed', status: error.status, reason: `gave up after ${data.attempts} attempts: ${error.message}` });
      return;
    }
    await this.#finish(pump, claimed, { state: 'failed', status: error.status, reason: error.message });
  }

  /**
   * Writes the outcome with the claim's etag. A store hiccup is retried briefly: an item left
   * in flight would be sent again once its lease expires.
   */
  async #finish(pump: SchoolPump, claimed: StoredRecord<OutboxItem>, change: Partial<OutboxItem>): Promise<StoredRecord<OutboxItem>> {
    const now = new Date().toISOString();
    const next: OutboxItem = { ...claimed.data, ...change, lease: undefined };
    if (FINAL.has(next.state)) next.finishedAt = now;
    if (next.state === 'delivered') this.#stats.delivered++;
    if (next.state === 'failed') this.#stats.failed++;
    if (next.state === 'pending') pump.noteDue(Date.parse(next.notBefore), next.broadcastId, chunkOfItem(claimed.id));
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#store.replace(claimed, next, claimed.etag);
      } catch (error) {
        if (isRace(error)) {
          // Only when this process lost its lease (a stall longer than leaseMs): the other owner decides.
          this.#log.warn({ school: pump.school }, 'outbox item changed while this instance had it in flight');
          return claimed;
        }
        if (attempt >= 5 || this.#stopping) {
          this.#log.error({ school: pump.school, err: errorName(error) }, 'outbox outcome not recorded; the item will be retried when its lease expires');
          return claimed;
        }
        await sleep(200 * attempt);
      }
    }
  }

  // ---------------------------------------------------------------- chunks and broadcasts

  /** Leases a chunk for this instance; undefined when it is done or another live instance holds it. */
  async leaseChunk(school: string, broadcastId: string, chunk: number): Promise<StoredRecord<ChunkRecord> | undefined> {
    const key = chunkKey(school, broadcastId, chunk);
    const current = await this.#store.get<ChunkRecord>(key);
    if (!current || current.data.state === 'done') return undefined;
    const now = Date.now();
    if (current.data.lease && current.data.lease.owner !== this.instanceId && leaseLive(current.data.lease, now)) return undefined;
    return replaceIfUnchanged(this.#store, current, { ...current.data, lease: { owner: this.instanceId, until: iso(now + this.options.leaseMs) } });
  }

  /** After a pass over a chunk: done (with its summary) when every item is final, else released. */
  async finishChunk(school: string, broadcastId: string, chunk: number): Promise<boolean> {
    const items = await this.#store.list<OutboxItem>('outbox', school, { idPrefix: chunkPrefix(broadcastId, chunk) });
    const done = items.every((item) => FINAL.has(item.data.state));
    const current = await this.#store.get<ChunkRecord>(chunkKey(school, broadcastId, chunk));
    if (!current || current.data.state === 'done') return true;
    if (current.data.lease && current.data.lease.owner !== this.instanceId && leaseLive(current.data.lease, Date.now())) return false;
    if (done) {
      const summary = { delivered: 0, failed: 0, cancelled: 0, failures: [] as Array<{ recipient: string; reason: string }> };
      for (const item of items) {
        if (item.data.state === 'delivered') summary.delivered++;
        else if (item.data.state === 'cancelled') summary.cancelled++;
        else {
          summary.failed++;
          summary.failures.push({ recipient: item.data.recipient, reason: item.data.reason ?? 'unknown' });
        }
      }
      return Boolean(await replaceIfUnchanged(this.#store, current, { broadcastId, chunk, state: 'done', summary }));
    }
    await replaceIfUnchanged(this.#store, current, { ...current.data, lease: undefined });
    return false;
  }

  /** Marks the broadcast complete and takes it out of the school's index. */
  async completeBroadcast(school: string, broadcastId: string): Promise<void> {
    await mutate<BroadcastRecord>(this.#store, broadcastKey(school, broadcastId), (current) =>
      current && !current.completedAt ? { ...current, state: current.state === 'cancelled' ? 'cancelled' : 'complete', completedAt: new Date().toISOString() } : undefined,
    );
    await mutate<IndexRecord>(this.#store, indexKey(school), (current) =>
      current && current.broadcasts.some((b) => b.id === broadcastId) ? { broadcasts: current.broadcasts.filter((b) => b.id !== broadcastId) } : undefined,
    );
  }

  /**
   * Retires a school whose index is empty: deletes its outbox-schools entry, by the etag read
   * before the index, so an enqueue racing with this (index first, entry second) keeps it.
   */
  async retireSchool(school: string): Promise<boolean> {
    const entry = await this.#store.get(schoolsKey(school));
    const index = await this.#store.get<IndexRecord>(indexKey(school));
    if (index && index.data.broadcasts.length > 0) return false;
    if (!entry) return true;
    try {
      await this.#store.delete(entry, entry.etag);
      return true;
    } catch (error) {
      if (isAppError(error, 'precondition_failed')) return false;
      throw error;
    }
  }

  readIndex(school: string): Promise<StoredRecord<IndexRecord> | undefined> {
    return this.#store.get<IndexRecord>(indexKey(school));
  }

  readBroadcast(school: string, broadcastId: string): Promise<StoredRecord<BroadcastRecord> | undefined> {
    return this.#store.get<BroadcastRecord>(broadcastKey(school, broadcastId));
  }

  cancelItem(item: StoredRecord<OutboxItem>): Promise<boolean> {
    return this.#cancelItem(item);
  }
}

/**
 * The worker for one school in this process: round-robin over the school's due broadcasts, one
 * chunk of each in turn (so a one-person escalation is not stuck behind a 10,000-person alert),
 * dispatching due items into the process's slots.
 */
class SchoolPump {
  readonly waker: Waker;
  done: Promise<void> = Promise.resolve();
  #nextDue = Infinity;
  /** Items this process is working on (so a new pass does not dispatch them again). */
  readonly #active = new Set<string>();
  readonly #forgotten = new Set<string>();
  /** Chunks with an item due again soon, to revisit within the pass rather than after it. */
  readonly #dueChunks = new Map<string, { broadcastId: string; chunk: number; at: number }>();
  readonly #broadcasts = new Map<string, { record: BroadcastRecord; readAt: number }>();

  constructor(private readonly outbox: Outbox, readonly school: string) {
    this.waker = new Waker(outbox.signal);
  }

  wake(): void {
    this.waker.wake();
  }

  /** An item of this chunk is due again at `at` (a retry, a throttled or put-back item). */
  noteDue(at: number, broadcastId?: string, chunk?: number): void {
    this.#nextDue = Math.min(this.#nextDue, at);
    if (broadcastId !== undefined && chunk !== undefined) {
      const key = `${broadcastId}:${chunk}`;
      const known = this.#dueChunks.get(key);
      if (!known || at < known.at) this.#dueChunks.set(key, { broadcastId, chunk, at });
    }
  }

  forgetBroadcast(broadcastId: string): void {
    this.#broadcasts.delete(broadcastId);
    this.#forgotten.add(broadcastId);
    this.wake();
  }

  async run(): Promise<void> {
    const { outbox } = this;
    while (!outbox.stopping) {
      try {
        this.#nextDue = Infinity;
        const next = await this.#pass();
        if (next === 'empty') {
          if (await outbox.retireSchool(this.school)) return;
          continue;
        }
        const wait = Math.min(next, this.#nextDue) - Date.now();
        await this.waker.sleep(Math.max(5, Math.min(wait, outbox.options.pollMs)));
      } catch (error) {
        outbox.log.warn({ school: this.school, err: errorName(error) }, 'outbox pass failed');
        await this.waker.sleep(outbox.options.pollMs);
      }
    }
  }

  async #broadcast(broadcastId: string, fresh = false): Promise<BroadcastRecord | undefined> {
    const cached = this.#broadcasts.get(broadcastId);
    if (cached && !fresh && Date.now() - cached.readAt < this.outbox.options.pollMs) return cached.record;
    const record = await this.outbox.readBroadcast(this.school, broadcastId);
    if (record) this.#broadcasts.set(broadcastId, { record: record.data, readAt: Date.now() });
    return record?.data;
  }

  /** One pass over the school's due broadcasts. Returns when to look again, or 'empty'. */
  async #pass(): Promise<number | 'empty'> {
    const { outbox } = this;
    let index = await outbox.readIndex(this.school);
    if (!index || index.data.broadcasts.length === 0) return 'empty';
    let indexReadAt = Date.now();
    let next = Date.now() + outbox.options.pollMs;
    const rotation: Array<{ id: string; chunks: number[] }> = [];
    const seen = new Set<string>();

    const admit = async (entries: IndexRecord['broadcasts']) => {
      const now = Date.now();
      for (const entry of entries) {
        if (seen.has(entry.id)) continue;
        const notBefore = Date.parse(entry.notBefore);
        if (notBefore > now) {
          next = Math.min(next, notBefore);
          continue;
        }
        seen.add(entry.id);
        const chunks = await outbox.store.list<ChunkRecord>('outbox-chunk', this.school, { idPrefix: `${entry.id}:` });
        const open = chunks.filter((c) => c.data.state === 'open');
        if (open.length === 0) {
          // Complete once every chunk exists and is done (an enqueue may still be writing them).
          const broadcast = await this.#broadcast(entry.id, true);
          if (broadcast && broadcast.state !== 'creating' && chunks.length >= broadcast.chunks) await outbox.completeBroadcast(this.school, entry.id);
          else if (!broadcast) await outbox.completeBroadcast(this.school, entry.id);
          continue;
        }
        const free = open.filter((c) => !c.data.lease || c.data.lease.owner === outbox.instanceId || !leaseLive(c.data.lease, now));
        for (const c of open) if (!free.includes(c) && c.data.lease) next = Math.min(next, Date.parse(c.data.lease.until));
        if (free.length > 0) rotation.push({ id: entry.id, chunks: free.map((c) => c.data.chunk) });
      }
    };
    await admit(index.data.broadcasts);

    while (rotation.length > 0 && !outbox.stopping) {
      // A store that answers synchronously (SQLite) must not starve timers and sockets.
      await new Promise((resolve) => setImmediate(resolve));
      for (const entry of [...rotation]) {
        const chunk = entry.chunks.shift();
        if (chunk === undefined || this.#forgotten.has(entry.id)) {
          rotation.splice(rotation.indexOf(entry), 1);
          continue;
        }
        const due = await this.#workChunk(entry.id, chunk);
        next = Math.min(next, due);
        if (outbox.stopping) break;
      }
      // Between rounds: new broadcasts (an escalation during a long alert) join the rotation...
      if (this.waker.takeWake() || Date.now() - indexReadAt >= outbox.options.pollMs) {
        index = await outbox.readIndex(this.school);
        indexReadAt = Date.now();
        if (index) await admit(index.data.broadcasts);
      }
      // ...and so do chunks with an item due again (a retry, an item put back), without waiting
      // for the rest of a long broadcast.
      const now = Date.now();
      for (const [key, due] of this.#dueChunks) {
        if (due.at > now || this.#forgotten.has(due.broadcastId)) continue;
        this.#dueChunks.delete(key);
        const entry = rotation.find((r) => r.id === due.broadcastId);
        if (!entry) rotation.push({ id: due.broadcastId, chunks: [due.chunk] });
        else if (!entry.chunks.includes(due.chunk)) entry.chunks.push(due.chunk);
      }
    }
    this.#dueChunks.clear();
    this.#forgotten.clear();
    return next;
  }

  /** Leases the chunk and dispatches its due items; returns when an item of it is next due. */
  async #workChunk(broadcastId: string, chunk: number): Promise<number> {
    const { outbox, school } = this;
    const lease = await outbox.leaseChunk(school, broadcastId, chunk);
    if (!lease) return Infinity;
    const broadcast = await this.#broadcast(broadcastId, true);
    if (!broadcast) return Infinity;
    const items = await outbox.store.list<OutboxItem>('outbox', school, { idPrefix: chunkPrefix(broadcastId, chunk) });
    const tasks: Array<Promise<unknown>> = [];
    let next = Infinity;
    for (const item of items) {
      if (outbox.stopping) break;
      const data = item.data;
      if (FINAL.has(data.state) || this.#active.has(item.id)) continue;
      const now = Date.now();
      if (data.state === 'inflight' && leaseLive(data.lease, now)) {
        next = Math.min(next, Date.parse(data.lease!.until));
        continue;
      }
      const current = await this.#broadcast(broadcastId);
      if (current?.state === 'cancelled' || this.#forgotten.has(broadcastId)) {
        if (data.state === 'pending') tasks.push(outbox.cancelItem(item));
        continue;
      }
      if (data.state === 'pending' && Date.parse(data.notBefore) > now) {
        next = Math.min(next, Date.parse(data.notBefore));
        continue;
      }
      // Not while the school is paused: dispatching would only claim items to put them back.
      if (!(await outbox.waitUnpaused(school))) break;
      await outbox.acquireSlot();
      if (outbox.stopping) {
        outbox.releaseSlot();
        break;
      }
      this.#active.add(item.id);
      const task = outbox
        .deliver(this, item, current ?? broadcast)
        .catch((error) => outbox.log.error({ school, err: errorName(error) }, 'outbox delivery failed unexpectedly'))
        .finally(() => {
          this.#active.delete(item.id);
          outbox.releaseSlot();
        });
      tasks.push(outbox.track(task));
    }
    outbox.track(
      Promise.allSettled(tasks)
        .then(() => outbox.finishChunk(school, broadcastId, chunk))
        .then((done) => {
          if (done) this.wake();
        })
        .catch((error) => outbox.log.warn({ school, err: errorName(error) }, 'outbox chunk not finished')),
    );
    return next;
  }
}

function sameReplies(messages: OutboundMessage[]): boolean {
  const first = messages[0]!.replies;
  if (messages.every((m) => m.replies === first)) return true;
  const json = JSON.stringify(first);
  return messages.every((m) => m.replies === first || JSON.stringify(m.replies) === json);
}

function chunkOfItem(id: string): number {
  const parts = id.split(':');
  return Number(parts[parts.length - 2]);
}

function platformName(platform: Platform): string {
  return platform === 'teams' || platform === 'playground' ? 'Teams' : platform === 'slack' ? 'Slack' : platform;
}

function errorName(error: unknown): string {
  if (error instanceof AppError) return error.code;
  return error instanceof Error ? error.name : typeof error;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeliveryError('transient', `no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
