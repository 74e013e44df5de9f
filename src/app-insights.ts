/**
 * Telemetry to Application Insights, without its SDK (not installable here, and it would instrument
 * far more than asked): events are queued in memory and POSTed in batches, off the turn path, to
 * the ingestion endpoint named by the connection string, as the track API's JSON array of
 * envelopes (`POST <IngestionEndpoint>/v2/track`).
 *
 * Bounded and forgiving: at most `maxQueue` events wait (newer ones are dropped beyond that and
 * counted), a batch that fails with a network error or a 408/429/5xx is tried once more with the
 * next flush, anything else is dropped; failures are logged (by status or error name, never the
 * key) once until a send succeeds again. Nothing here throws into a caller.
 */
import { hostname } from 'node:os';
import type { AppInsightsTarget } from './config.ts';
import type { Logger } from './logger.ts';
import type { DeliveryEvent, ErrorEvent, JobEvent, Telemetry, TurnEvent } from './telemetry.ts';

export interface AppInsightsOptions {
  /** Flush when this many events wait. */
  batchSize: number;
  /** Flush at least this often while events wait. */
  flushIntervalMs: number;
  maxQueue: number;
  /** One POST may take this long before it is abandoned. */
  requestTimeoutMs: number;
  /** `ai.cloud.role`: how the bot is named on the application map. */
  role: string;
}

const DEFAULTS: AppInsightsOptions = { batchSize: 100, flushIntervalMs: 5_000, maxQueue: 2_000, requestTimeoutMs: 10_000, role: 'esafety-bot' };

/** One telemetry item in the track API's envelope format. */
export interface Envelope {
  name: string;
  time: string;
  iKey: string;
  tags: Record<string, string>;
  data: { baseType: string; baseData: Record<string, unknown> };
}

type Properties = Record<string, string>;
type Measurements = Record<string, number>;

export class AppInsightsTelemetry implements Telemetry {
  readonly options: AppInsightsOptions;
  readonly #target: AppInsightsTarget;
  readonly #log: Logger;
  readonly #baseTags: Record<string, string>;
  #queue: Envelope[] = [];
  /** A batch that failed in a way worth one more try. */
  #retry: Envelope[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The last flush: the next one starts after it. */
  #sending: Promise<void> | undefined;
  #failing = false;
  #dropped = 0;
  #closed = false;

  constructor(target: AppInsightsTarget, log: Logger, options: Partial<AppInsightsOptions> = {}) {
    this.#target = target;
    this.#log = log;
    this.options = { ...DEFAULTS, ...options };
    this.#baseTags = { 'ai.cloud.role': this.options.role, 'ai.cloud.roleInstance': hostname(), 'ai.internal.sdkVersion': 'esafety-bot:1' };
  }

  turn(event: TurnEvent): void {
    this.#event('turn', { route: event.route ?? '', platform: event.platform, school: event.school ?? '', outcome: event.outcome }, { durationMs: event.durationMs, ...(event.storeOperations === undefined ? {} : { storeOperations: event.storeOperations }) }, event.correlationId);
  }

  delivery(event: DeliveryEvent): void {
    this.#event('delivery', { school: event.school, platform: event.platform, outcome: event.outcome }, { durationMs: event.durationMs });
  }

  job(event: JobEvent): void {
    this.#event('job', { school: event.school, kind: event.kind, outcome: event.outcome }, { durationMs: event.durationMs, attempt: event.attempt });
  }

  error(event: ErrorEvent): void {
    const properties: Properties = { where: event.where, code: event.code };
    if (event.school) properties.school = event.school;
    if (event.route) properties.route = event.route;
    // The exception's "message" is its code: an error's own message may quote what a user typed.
    this.#enqueue('Exception', 'ExceptionData', { ver: 2, severityLevel: 3, exceptions: [{ typeName: event.name, message: event.code, hasFullStack: false }], properties }, event.correlationId);
  }

  /** Sends everything queued now, after any send in progress (sends never overlap). */
  flush(): Promise<void> {
    const next = (this.#sending ?? Promise.resolve()).then(() => this.#drain()).catch(() => undefined);
    this.#sending = next;
    return next;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  #event(name: string, properties: Properties, measurements: Measurements, correlationId?: string): void {
    this.#enqueue('Event', 'EventData', { ver: 2, name, properties, measurements }, correlationId);
  }

  #enqueue(type: 'Event' | 'Exception', baseType: string, baseData: Record<string, unknown>, correlationId?: string): void {
    try {
      if (this.#closed) return;
      if (this.#queue.length >= this.options.maxQueue) {
        this.#dropped++;
        return;
      }
      const tags = correlationId ? { ...this.#baseTags, 'ai.operation.id': correlationId } : this.#baseTags;
      this.#queue.push({ name: `Microsoft.ApplicationInsights.${this.#target.instrumentationKey.replace(/-/g, '')}.${type}`, time: new Date().toISOString(), iKey: this.#target.instrumentationKey, tags, data: { baseType, baseData } });
      if (this.#queue.length >= this.options.batchSize) void this.flush();
      else this.#flushLater();
    } catch {
      // Never into the turn.
    }
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#retry.length > 0) {
      if (!(await this.#send())) return;
    }
  }

  /** Sends one batch (with the one kept for another try); false when it failed. */
  async #send(): Promise<boolean> {
    const batch = [...this.#retry, ...this.#queue.splice(0, this.options.batchSize)];
    const retrying = this.#retry.length > 0;
    this.#retry = [];
    let outcome: { ok: true } | { ok: false; retriable: boolean; reason: string };
    try {
      const response = await fetch(`${this.#target.ingestionEndpoint}/v2/track`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(batch),
        signal: AbortSignal.timeout(this.options.requestTimeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      // 206: some items refused (malformed); sending them again would not help.
      outcome = response.ok ? { ok: true } : { ok: false, retriable: [408, 429, 500, 502, 503, 504].includes(response.status), reason: `HTTP ${response.status}` };
    } catch (error) {
      outcome = { ok: false, retriable: true, reason: error instanceof Error ? error.name : 'error' };
    }
    if (outcome.ok) {
      if (this.#failing || this.#dropped > 0) this.#log.info({ dropped: this.#dropped }, 'Application Insights telemetry sending again');
      this.#failing = false;
      this.#dropped = 0;
    } else {
      // Tried once more with the next flush; a batch that already was is dropped.
      if (outcome.retriable && !retrying) this.#retry = batch;
      else this.#dropped += batch.length;
      if (!this.#failing) this.#log.warn({ reason: outcome.reason, events: batch.length }, 'Application Insights telemetry not sent');
      this.#failing = true;
    }
    if (!outcome.ok && (this.#retry.length > 0 || this.#queue.length > 0) && !this.#closed) this.#flushLater();
    return outcome.ok;
  }

  /** A flush in flushIntervalMs, unless one is already set; it never keeps the process alive. */
  #flushLater(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.options.flushIntervalMs);
    this.#timer.unref();
  }
}
