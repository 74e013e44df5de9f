/**
 * A loopback stand-in for the Bot Framework connector that enforces a rate limit, as the real
 * service does: a token bucket per bot (`ratePerSecond`, refilled continuously, holding at most
 * `burst` tokens, half a second's worth by default). A request that finds no token is answered 429 with Retry-After (whole seconds,
 * as HTTP has it, at least 1). Every request is recorded with its arrival time and answer, and
 * every delivery (a 200) is kept: nothing is ever removed, so a test or benchmark can count
 * duplicates and gaps exactly. Failures can be scripted per conversation or for the next requests.
 *
 * Used by bench/broadcast.ts (in the parent process, so it outlives the app it kills) and by the
 * delivery tests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ConnectorRequest {
  /** Arrival time (ms since the epoch). */
  at: number;
  conversationId: string;
  status: number;
}

export interface Delivery {
  at: number;
  conversationId: string;
  /** The activity as posted, when `keepActivities` is on. */
  activity?: Record<string, any>;
}

export interface LimitedConnectorOptions {
  /** Requests a second allowed for the bot (0: no limit). */
  ratePerSecond?: number;
  /**
   * Bucket size; by default half a second's worth (at least 1): sustained sending above the rate is
   * refused within half a second, while the scheduling noise of two busy processes on a small
   * machine (a stall in this server bunches requests that were sent evenly) is not mistaken for it.
   */
  burst?: number;
  /** Keep each delivered activity's JSON (tests); off for big benchmarks. */
  keepActivities?: boolean;
  /** Delay before answering each request, in ms. */
  latencyMs?: number;
}

export interface LimitedConnector {
  url: string;
  /** Every request, in arrival order, with the status it got. */
  readonly requests: ConnectorRequest[];
  /** Every accepted activity, in order. */
  readonly deliveries: Delivery[];
  /** Accepted activities per conversation. */
  readonly counts: Map<string, number>;
  /** Answers with `status` the next `times` requests for this conversation. */
  failFor(conversationId: string, status: number, times?: number, headers?: Record<string, string>): void;
  /** Answers with `status` the next `times` requests, whatever the conversation. */
  failNext(status: number, times?: number, headers?: Record<string, string>): void;
  setRate(ratePerSecond: number, burst?: number): void;
  /** Resolves once `count` activities have been accepted in total. */
  waitForDeliveries(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

interface Failure {
  status: number;
  headers: Record<string, string>;
}

export async function startLimitedConnector(options: LimitedConnectorOptions = {}): Promise<LimitedConnector> {
  const requests: ConnectorRequest[] = [];
  const deliveries: Delivery[] = [];
  const counts = new Map<string, number>();
  const perConversation = new Map<string, Failure[]>();
  let next: Failure[] = [];
  let waiters: Array<() => void> = [];

  let rate = options.ratePerSecond ?? 0;
  let capacity = options.burst ?? Math.max(1, Math.floor(rate / 2));
  let tokens = capacity;
  let refilledAt = Date.now();
  const take = (now: number): number | undefined => {
    if (rate <= 0) return undefined;
    tokens = Math.min(capacity, tokens + ((now - refilledAt) / 1000) * rate);
    refilledAt = now;
    if (tokens >= 1) {
      tokens -= 1;
      return undefined;
    }
    // Whole seconds, at least one (Retry-After is delay-seconds).
    return Math.max(1, Math.ceil((1 - tokens) / rate));
  };

  const answer = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    const send = () => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body);
    };
    if (options.latencyMs) setTimeout(send, options.latencyMs);
    else send();
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const at = Date.now();
    const match = /^\/v3\/conversations\/([^/]+)\/activities(?:\/([^/?]+))?/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      answer(res, 404, '{"error":{"code":"NotFound"}}');
      return;
    }
    const conversationId = decodeURIComponent(match[1]!);
    const scripted = perConversation.get(conversationId)?.shift() ?? next.shift();
    if (scripted) {
      requests.push({ at, conversationId, status: scripted.status });
      answer(res, scripted.status, '{"error":{"code":"Scripted","message":"scripted failure"}}', scripted.headers);
      return;
    }
    const retryAfter = take(at);
    if (retryAfter !== undefined) {
      requests.push({ at, conversationId, status: 429 });
      answer(res, 429, '{"error":{"code":"Throttled","message":"too many requests"}}', { 'retry-after': String(retryAfter) });
      return;
    }
    requests.push({ at, conversationId, status: 200 });
    deliveries.push({ at, conversationId, activity: options.keepActivities ? JSON.parse(body || '{}') : undefined });
    counts.set(conversationId, (counts.get(conversationId) ?? 0) + 1);
    answer(res, 200, `{"id":"sent-${deliveries.length}"}`);
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };

  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => handle(req, res, body));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    deliveries,
    counts,
    failFor: (conversationId, status, times = 1, headers = {}) => {
      const list = perConversation.get(conversationId) ?? [];
      for (let i = 0; i < times; i++) list.push({ status, headers });
      perConversation.set(conversationId, list);
    },
    failNext: (status, times = 1, headers = {}) => {
      next = [...next, ...Array.from({ length: times }, () => ({ status, headers }))];
    },
    setRate: (ratePerSecond, burst) => {
      rate = ratePerSecond;
      capacity = burst ?? Math.max(1, Math.floor(rate / 2));
      tokens = capacity;
      refilledAt = Date.now();
    },
    waitForDeliveries: (count, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`expected ${count} deliveries, got ${deliveries.length}`)), timeoutMs);
        const check = () => {
          if (deliveries.length >= count) {
            clearTimeout(deadline);
            resolve();
          } else waiters.push(check);
        };
        check();
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
