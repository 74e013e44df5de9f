/**
 * The contract between features that message people proactively and the durable delivery layer.
 * Features enqueue; the outbox sends through the platform senders, within the platforms' limits,
 * and survives restarts. Timers (escalations, reminders) are durable jobs, never setTimeout.
 */
import type { Reply } from '../bot/reply.ts';

/** How a platform send failed; adapters throw this so the outbox can decide what to do. */
export type DeliveryFailureKind =
  /** 429: pause the whole school's sending until `retryAfterMs` (or backoff with jitter). */
  | 'throttled'
  /** 412, 502, 504, network errors: retry with backoff. */
  | 'transient'
  /** User gone, bot blocked, app uninstalled, no conversation: record and report, never retry. */
  | 'permanent';

export class DeliveryError extends Error {
  readonly kind: DeliveryFailureKind;
  readonly retryAfterMs?: number;
  readonly status?: number;
  constructor(kind: DeliveryFailureKind, message: string, options: { retryAfterMs?: number; status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'DeliveryError';
    this.kind = kind;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
  }
}

export interface OutboundMessage {
  /** User id within the school (the directory's user record holds the platform and reference). */
  recipient: string;
  replies: Reply[];
}

export interface EnqueueOptions {
  /** Groups items for progress and cancelling; generated when absent. */
  broadcastId?: string;
  /** Not sent before this time (scheduled sending). */
  notBefore?: Date;
  /** What asked for it ("qa.escalation", "alert"), kept on the broadcast for reports. */
  origin?: string;
}

export interface BroadcastProgress {
  total: number;
  pending: number;
  inflight: number;
  delivered: number;
  failed: number;
  cancelled: number;
  /** Reasons for permanent failures, by recipient. */
  failures: Array<{ recipient: string; reason: string }>;
}

/** Durable, at-least-once (re-sends bounded by the items in flight at a crash) delivery. */
export interface MessageQueue {
  enqueue(school: string, messages: OutboundMessage[], options?: EnqueueOptions): Promise<{ broadcastId: string; count: number }>;
  progress(school: string, broadcastId: string): Promise<BroadcastProgress>;
  /** Cancels items not yet sent; returns how many were cancelled. */
  cancel(school: string, broadcastId: string): Promise<number>;
}

export interface Job<P = Record<string, unknown>> {
  school: string;
  /** Idempotent: scheduling the same id again replaces the pending job. */
  id: string;
  kind: string;
  runAt: string;
  payload: P;
  /** Which run this is (1 the first; more after the handler failed or its process died). Set by the runner. */
  attempt?: number;
}

/** Durable timers: run once across instances, survive restarts. */
export interface JobScheduler {
  register<P>(kind: string, handler: (job: Job<P>) => Promise<void>): void;
  schedule<P>(job: Omit<Job<P>, 'runAt'> & { runAt: Date }): Promise<void>;
  cancel(school: string, id: string): Promise<boolean>;
}
