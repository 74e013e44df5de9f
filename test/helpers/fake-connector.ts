/**
 * A loopback stand-in for the Bot Framework connector service: it accepts the calls botbuilder makes
 * when replying (POST /v3/conversations/{id}/activities[/{replyToId}]) and records each activity,
 * and when updating one (PUT /v3/conversations/{id}/activities/{activityId}: recorded in `updates`;
 * 404 for an id it never gave in that conversation, or one `deleteActivity` removed).
 * Activities posted to /api/messages carry serviceUrl = this server's URL.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CapturedActivity {
  conversationId: string;
  replyToId?: string;
  activity: Record<string, any>;
}

export interface CapturedUpdate {
  conversationId: string;
  activityId: string;
  activity: Record<string, any>;
}

export interface FakeConnector {
  url: string;
  activities: CapturedActivity[];
  /** Activities updated in place, in order. */
  updates: CapturedUpdate[];
  /** The id the connector gave each posted activity (same order as `activities`). */
  idOf(captured: CapturedActivity): string;
  /** As if the person deleted the message: updating it then answers 404. */
  deleteActivity(activityId: string): void;
  /** Resolves once at least `count` updates have arrived (in total). */
  waitForUpdates(count: number, timeoutMs?: number): Promise<CapturedUpdate[]>;
  /** Resolves once at least `count` activities have arrived (in total). */
  waitFor(count: number, timeoutMs?: number): Promise<CapturedActivity[]>;
  /** Respond with this status to the next `times` sends (to test failures and throttling). */
  failNext(status: number, times?: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

export async function startFakeConnector(): Promise<FakeConnector> {
  const activities: CapturedActivity[] = [];
  const updates: CapturedUpdate[] = [];
  const ids = new Map<CapturedActivity, string>();
  /** Posted activity ids that still exist, with their conversation. */
  const live = new Map<string, string>();
  const waiters: Array<() => void> = [];
  let failures: Array<{ status: number; headers: Record<string, string> }> = [];
  // restify patches http.ServerResponse in this process (writeHead no longer returns `res`), so
  // replies are written with a helper that does not chain.
  const reply = (res: import('node:http').ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const match = /^\/v3\/conversations\/([^/]+)\/activities(?:\/([^/?]+))?/.exec(req.url ?? '');
      if ((req.method !== 'POST' && req.method !== 'PUT') || !match || (req.method === 'PUT' && !match[2])) {
        reply(res, 404, '{"error":{"code":"NotFound"}}');
        return;
      }
      const failure = failures.shift();
      if (failure) {
        reply(res, failure.status, '{"error":{"code":"Failure"}}', failure.headers);
        return;
      }
      const activity = JSON.parse(body || '{}');
      const conversationId = decodeURIComponent(match[1]!);
      if (req.method === 'PUT') {
        const activityId = decodeURIComponent(match[2]!);
        if (live.get(activityId) !== conversationId) {
          reply(res, 404, '{"error":{"code":"ActivityNotFoundInConversation","message":"The activity was not found"}}');
          return;
        }
        updates.push({ conversationId, activityId, activity });
        reply(res, 200, JSON.stringify({ id: activityId }));
        for (const wake of waiters.splice(0)) wake();
        return;
      }
      const captured = { conversationId, replyToId: match[2] && decodeURIComponent(match[2]), activity };
      activities.push(captured);
      const id = `sent-${activities.length}`;
      ids.set(captured, id);
      live.set(id, conversationId);
      reply(res, 200, JSON.stringify({ id }));
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    activities,
    updates,
    idOf: (captured) => ids.get(captured) ?? '',
    deleteActivity: (activityId) => {
      live.delete(activityId);
    },
    waitForUpdates: (count, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`expected ${count} updates, got ${updates.length}`)), timeoutMs);
        const check = () => {
          if (updates.length >= count) {
            clearTimeout(deadline);
            resolve(updates);
          } else waiters.push(check);
        };
        check();
      }),
    waitFor: (count, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`expected ${count} activities, got ${activities.length}`)), timeoutMs);
        const check = () => {
          if (activities.length >= count) {
            clearTimeout(deadline);
            resolve(activities);
          } else waiters.push(check);
        };
        check();
      }),
    failNext: (status, times = 1, headers = {}) => {
      failures = [...failures, ...Array.from({ length: times }, () => ({ status, headers }))];
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
