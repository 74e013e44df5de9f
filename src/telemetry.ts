/**
 * The bot's own operational events (one per turn, per delivery attempt, per job run, per failure),
 * for dashboards and alerts. A dependency handed in by the composition root, never a global: the
 * command line and tests get `noTelemetry`, the server the log or Application Insights one.
 *
 * Events carry what operating the bot needs and nothing about people or what they wrote: route
 * names, platform, school id, durations, counts, outcomes, error names and codes. No message text,
 * no user ids or names, no report content. The types below are the whole vocabulary, so a field
 * cannot be added by accident at a call site.
 *
 * An implementation must never throw into its caller and never wait on the network in it: a turn
 * does not get slower or fail because telemetry does.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { AppInsightsTelemetry } from './app-insights.ts';
import type { AppInsightsTarget } from './config.ts';
import type { Logger } from './logger.ts';
import type { RecordKey, Store } from './store/store.ts';

export type TurnOutcome = 'ok' | 'refused' | 'invalid' | 'failed' | 'not-registered' | 'rejected-input' | 'unknown-route';

export interface TurnEvent {
  /** The route that handled it (`qa.ask`, `incident.submit`, …), when one was chosen. */
  route?: string;
  platform: string;
  school?: string;
  durationMs: number;
  /** Store round trips the turn made (each is a request unit bill on Cosmos DB), when counted. */
  storeOperations?: number;
  outcome: TurnOutcome;
  /** The turn's reference, as in the logs and in an apology the user was shown. */
  correlationId?: string;
}

export interface DeliveryEvent {
  school: string;
  platform: string;
  /** sent, or how the attempt failed (the outbox decides what happens next). */
  outcome: 'sent' | 'throttled' | 'transient' | 'permanent';
  durationMs: number;
}

export interface JobEvent {
  school: string;
  kind: string;
  outcome: 'done' | 'failed';
  durationMs: number;
  attempt: number;
}

export interface ErrorEvent {
  /** Where it happened: `turn`, `job`, … */
  where: string;
  /** The AppError code, or `internal`. */
  code: string;
  /** The error's class name; never its message, which may quote user input. */
  name: string;
  school?: string;
  route?: string;
  correlationId?: string;
}

export interface Telemetry {
  turn(event: TurnEvent): void;
  delivery(event: DeliveryEvent): void;
  job(event: JobEvent): void;
  error(event: ErrorEvent): void;
  /** Sends what is buffered and stops; the app calls it on shutdown. */
  close(): Promise<void>;
}

export const noTelemetry: Telemetry = {
  turn: () => undefined,
  delivery: () => undefined,
  job: () => undefined,
  error: () => undefined,
  close: async () => undefined,
};

/** Events as log lines at debug (the `turn` info line already exists): for local use and a deployment without Application Insights. */
export function logTelemetry(log: Logger): Telemetry {
  const child = log.child({ telemetry: true });
  return {
    turn: (event) => child.debug({ event: 'turn', ...event }, 'telemetry'),
    delivery: (event) => child.debug({ event: 'delivery', ...event }, 'telemetry'),
    job: (event) => child.debug({ event: 'job', ...event }, 'telemetry'),
    error: (event) => child.debug({ event: 'error', ...event }, 'telemetry'),
    close: async () => undefined,
  };
}

/** The server's telemetry: Application Insights when its connection string is set, else log lines at debug. */
export function createTelemetry(settings: { appInsights?: AppInsightsTarget }, log: Logger): Telemetry {
  if (settings.appInsights) return new AppInsightsTelemetry(settings.appInsights, log);
  // Debug lines nobody writes are not worth measuring: counting a turn's store operations costs
  // every turn an AsyncLocalStorage context (promise hooks on Node 20).
  return log.isLevelEnabled('debug') ? logTelemetry(log) : noTelemetry;
}

// ---------------------------------------------------------------- store operations per turn

const turnOperations = new AsyncLocalStorage<{ count: number }>();

/**
 * Runs `work` counting the store operations made inside it (through a store wrapped by
 * countStoreOperationsPerTurn), including those of anything it awaits.
 */
export async function measureStoreOperations<T>(work: () => Promise<T>): Promise<{ result: T; storeOperations: number }> {
  const counter = { count: 0 };
  const result = await turnOperations.run(counter, work);
  return { result, storeOperations: counter.count };
}

/** The store, counting each call into the turn that made it (calls outside a turn are not counted). */
export function countStoreOperationsPerTurn(inner: Store): Store {
  const note = () => {
    const counter = turnOperations.getStore();
    if (counter) counter.count++;
  };
  return {
    get: (key: RecordKey) => (note(), inner.get(key)),
    create: (key, data) => (note(), inner.create(key, data)),
    replace: (key, data, etag) => (note(), inner.replace(key, data, etag)),
    upsert: (key, data) => (note(), inner.upsert(key, data)),
    delete: (key, etag) => (note(), inner.delete(key, etag)),
    list: (kind, school, options) => (note(), inner.list(kind, school, options)),
    ping: () => inner.ping(),
    close: () => inner.close(),
  } as Store;
}
