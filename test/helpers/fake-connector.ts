/**
 * A loopback stand-in for the Bot Framework connector service: it accepts the calls botbuilder makes
 * when replying (POST /v3/conversations/{id}/activities[/{replyToId}]) and records each activity;
 * records updates (PUT /v3/conversations/{id}/activities/{activityId}: in `updates`; 404 for an id
 * it never gave in that conversation, or one `deleteActivity` removed); serves a team's roster as
 * Teams does (GET /v3/conversations/{team id}/pagedmembers, a page at a time with a continuation
 * token); and creates personal conversations (POST /v3/conversations, the same id again for the
 * same member, as Teams answers). Activities posted to /api/messages carry serviceUrl = this
 * server's URL.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CapturedActivity {
  conversationId: string;
  replyToId?: string;
  activity: Record<string, any>;
}

/** Which calls a scripted failure applies to. */
export type ConnectorRoute = 'activities' | 'members' | 'create';
export interface CapturedUpdate {
  conversationId: string;
  activityId: string;
  activity: Record<string, any>;
}

export interface FakeConnector {
  url: string;
  activities: CapturedActivity[];
  /** Team rosters by team id, as the connector lists them (TeamsChannelAccount objects). */
  rosters: Map<string, Array<Record<string, unknown>>>;
  /** At most this many members a page, whatever pageSize asks (so a test sees the continuation token). */
  rosterPageSize: number;
  /** Every roster page served: the team id and the continuation token it was asked with. */
  rosterReads: Array<{ teamId: string; continuationToken?: string; pageSize?: number }>;
  /** Every POST /v3/conversations (create conversation), with its ConversationParameters. */
  created: Array<{ id: string; parameters: Record<string, any> }>;
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
  /** Respond with this status to the next `times` calls of a kind (sends by default), to test failures and throttling. */
  failNext(status: number, times?: number, headers?: Record<string, string>, route?: ConnectorRoute): void;
  close(): Promise<void>;
}

export async function startFakeConnector(): Promise<FakeConnector> {
  const activities: CapturedActivity[] = [];
  const updates: CapturedUpdate[] = [];
  const ids = new Map<CapturedActivity, string>();
  /** Posted activity ids that still exist, with their conversation. */
  const live = new Map<string, string>();
  const waiters: Array<() => void> = [];
  let failures: Array<{ status: number; headers: Record<string, string>; route: ConnectorRoute }> = [];
  const rosters = new Map<string, Array<Record<string, unknown>>>();
  const rosterReads: FakeConnector['rosterReads'] = [];
  const created: FakeConnector['created'] = [];
  const state = { rosterPageSize: 100 };
  /** The first scripted failure for this kind of call, taken off the queue. */
  const failureFor = (route: ConnectorRoute) => {
    const index = failures.findIndex((failure) => failure.route === route);
    return index < 0 ? undefined : failures.splice(index, 1)[0];
  };
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
      const url = new URL(req.url ?? '/', 'http://connector');
      const members = /^\/v3\/conversations\/([^/]+)\/pagedmembers$/.exec(url.pathname);
      if (req.method === 'GET' && members) {
        const failure = failureFor('members');
        if (failure) return reply(res, failure.status, '{"error":{"code":"Failure","message":"Roster of Alice Example not available"}}', failure.headers);
        const teamId = decodeURIComponent(members[1]!);
        const roster = rosters.get(teamId);
        if (!roster) return reply(res, 404, '{"error":{"code":"ConversationNotFound"}}');
        const continuationToken = url.searchParams.get('continuationToken') ?? undefined;
        const pageSize = Number(url.searchParams.get('pageSize') ?? 0) || undefined;
        rosterReads.push({ teamId, continuationToken, pageSize });
        const start = continuationToken ? Number(Buffer.from(continuationToken, 'base64url').toString('utf8').replace(/^offset:/, '')) : 0;
        const size = Math.min(pageSize ?? state.rosterPageSize, state.rosterPageSize);
        const next = start + size < roster.length ? Buffer.from(`offset:${start + size}`).toString('base64url') : undefined;
        return reply(res, 200, JSON.stringify({ members: roster.slice(start, start + size), ...(next ? { continuationToken: next } : {}) }));
      }
      if (req.method === 'POST' && url.pathname === '/v3/conversations') {
        const failure = failureFor('create');
        if (failure) return reply(res, failure.status, '{"error":{"code":"Failure"}}', failure.headers);
        const parameters = JSON.parse(body || '{}');
        const member = parameters.members?.[0]?.id;
        if (parameters.isGroup !== false || typeof member !== 'string' || !parameters.tenantId) return reply(res, 400, '{"error":{"code":"BadArgument"}}');
        const id = `a:personal-${member}`;
        created.push({ id, parameters });
        return reply(res, 201, JSON.stringify({ id }));
      }
      const match = /^\/v3\/conversations\/([^/]+)\/activities(?:\/([^/?]+))?/.exec(req.url ?? '');
      if ((req.method !== 'POST' && req.method !== 'PUT') || !match || (req.method === 'PUT' && !match[2])) {
        reply(res, 404, '{"error":{"code":"NotFound"}}');
        return;
      }
      const failure = failureFor('activities');
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
    rosters,
    get rosterPageSize() {
      return state.rosterPageSize;
    },
    set rosterPageSize(size: number) {
      state.rosterPageSize = size;
    },
    rosterReads,
    created,
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
    failNext: (status, times = 1, headers = {}, route = 'activities') => {
      failures = [...failures, ...Array.from({ length: times }, () => ({ status, headers, route }))];
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
