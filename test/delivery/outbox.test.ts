/**
 * The durable outbox, on both stores, through the real Teams adapter to a loopback connector that
 * records every request: delivery, permanent and transient failures, a 429 pausing the whole school
 * (once, for every worker and instance), Retry-After, cancelling, scheduled sending, two instances
 * on one store, and a crash mid-broadcast.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLimitedConnector, type LimitedConnector } from '../../bench/lib/limited-connector.ts';
import type { Outbox, OutboxItem } from '../../src/delivery/outbox.ts';
import type { Reply } from '../../src/bot/reply.ts';
import type { Store } from '../../src/store/store.ts';
import { memoryLog } from '../helpers/memory-log.ts';
import { alert, conversationOf, cosmosStores, ids, makeOutbox, seedUsers, sqliteStores, teamsSender, waitUntil, type StoreKind } from './helpers.ts';

/**
 * The local Cosmos DB server runs in this process and costs a few milliseconds of CPU per call, so
 * its broadcasts are smaller (`scale`), and the tests of logic that no store call touches (rate
 * limiting, timing of one pause) run on SQLite only.
 */
const kinds: Array<[string, () => Promise<StoreKind>, number]> = [
  ['SQLite', sqliteStores, 1],
  ['Cosmos DB (local server)', cosmosStores, 0.25],
];

describe.each(kinds)('the outbox on %s', (name, makeKind, scale) => {
  const n = (count: number) => Math.ceil(count * scale);
  const notSqlite = name !== 'SQLite';
  let kind: StoreKind;
  let store: Store;
  let connector: LimitedConnector;
  const outboxes: Outbox[] = [];
  const newSchool = () => `s-${randomUUID().slice(0, 8)}`;
  const started = async (outbox: Outbox) => {
    outboxes.push(outbox);
    await outbox.start();
    return outbox;
  };

  beforeAll(async () => {
    kind = await makeKind();
    store = await kind.open();
  });
  afterEach(async () => {
    await Promise.all(outboxes.splice(0).map((outbox) => outbox.stop()));
    await connector?.close();
  });
  afterAll(async () => {
    await kind?.close();
  });

  /** Settled: nothing pending or in flight for the broadcast. */
  const settled = async (outbox: Outbox, school: string, broadcastId: string, timeoutMs = 20_000) => {
    let last: unknown;
    await waitUntil(async () => {
      const p = await outbox.progress(school, broadcastId);
      last = p;
      return p.pending + p.inflight === 0;
    }, timeoutMs, 'the broadcast to settle').catch(async (error) => {
      const items = await store.list<OutboxItem>('outbox', school, { idPrefix: `${broadcastId}:` });
      throw new Error(`${(error as Error).message}: ${JSON.stringify(last)}; not final: ${JSON.stringify(items.filter((i) => !['delivered', 'failed', 'cancelled'].includes(i.data.state)).slice(0, 3).map((i) => i.data))}`);
    });
  };

  it('delivers a broadcast to every recipient exactly once, then retires it', async () => {
    connector = await startLimitedConnector({ keepActivities: true });
    const school = newSchool();
    const total = n(230);
    const people = ids('p', total);
    await seedUsers(store, school, people, connector.url);
    const outbox = await started(makeOutbox(store));
    const { broadcastId, count } = await outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    expect(count).toBe(total);
    await settled(outbox, school, broadcastId);

    expect(connector.deliveries).toHaveLength(total);
    for (const person of people) expect(connector.counts.get(conversationOf(person))).toBe(1);
    expect(connector.deliveries[0]!.activity).toMatchObject({ type: 'message', text: 'An emerging issue: please read the update.' });
    expect(await outbox.progress(school, broadcastId)).toMatchObject({ total, delivered: total, failed: 0, pending: 0, inflight: 0, cancelled: 0, failures: [] });
    // One shared message body on the broadcast, not one copy per recipient.
    const [item] = await store.list<OutboxItem>('outbox', school, { limit: 1 });
    expect(item!.data.replies).toBeUndefined();
    // Complete: out of the school's index, and the school out of the workers' list.
    await waitUntil(async () => (await store.get<{ state: string }>({ kind: 'outbox-broadcast', school, id: broadcastId }))?.data.state === 'complete', 5000, 'complete');
    await waitUntil(async () => !(await store.get({ kind: 'outbox-schools', school: '_global', id: school })), 5000, 'school retired');
    expect((await store.get<{ broadcasts: unknown[] }>({ kind: 'outbox-index', school, id: 'active' }))?.data.broadcasts).toEqual([]);

    // Retention: nothing before its time; then the items and the shared message go, the counts stay.
    expect(await outbox.purgeFinished(school, new Date(Date.now() - 24 * 60 * 60 * 1000))).toEqual({ broadcasts: 0, items: 0 });
    expect(await store.list('outbox', school, { idPrefix: `${broadcastId}:` })).toHaveLength(total);
    expect(await outbox.purgeFinished(school, new Date(Date.now() + 1000))).toEqual({ broadcasts: 1, items: total });
    expect(await store.list('outbox', school, { idPrefix: `${broadcastId}:` })).toEqual([]);
    expect((await store.get<{ replies?: unknown }>({ kind: 'outbox-broadcast', school, id: broadcastId }))?.data.replies).toBeUndefined();
    expect(await outbox.progress(school, broadcastId)).toMatchObject({ total, delivered: total, pending: 0 });
    // A second sweep finds nothing left to remove.
    expect(await outbox.purgeFinished(school, new Date(Date.now() + 1000))).toEqual({ broadcasts: 0, items: 0 });
  });

  it('records a permanent failure once, with its reason, and never retries it', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const people = ids('q', 20);
    await seedUsers(store, school, people, connector.url);
    connector.failFor(conversationOf(people[3]!), 403, 5);
    connector.failFor(conversationOf(people[7]!), 404, 5);
    const outbox = await started(makeOutbox(store));
    // Someone the directory has never seen, and someone with no conversation yet.
    await store.upsert({ kind: 'user', school, id: 'no-chat' }, { id: 'no-chat', platform: 'teams', roles: [], firstSeen: '', lastSeen: '' });
    const recipients = [...people, 'stranger', 'no-chat'];
    const { broadcastId } = await outbox.enqueue(school, recipients.map((recipient) => ({ recipient, replies: alert() })));
    await settled(outbox, school, broadcastId);

    const progress = await outbox.progress(school, broadcastId);
    expect(progress).toMatchObject({ total: 22, delivered: 18, failed: 4, pending: 0, inflight: 0 });
    expect(progress.failures).toEqual(
      expect.arrayContaining([
        { recipient: people[3], reason: expect.stringMatching(/blocked the bot.*\(403\)/) },
        { recipient: people[7], reason: expect.stringMatching(/no longer exists \(404\)/) },
        { recipient: 'stranger', reason: 'unknown user' },
        { recipient: 'no-chat', reason: 'no conversation with this person yet' },
      ]),
    );
    // One request each: the refusals were not retried.
    expect(connector.requests.filter((r) => r.conversationId === conversationOf(people[3]!))).toHaveLength(1);
    expect(connector.requests.filter((r) => r.conversationId === conversationOf(people[7]!))).toHaveLength(1);
  });

  it('retries transient failures (412, 502, 504, network) with backoff, and gives up after maxAttempts', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const people = ids('t', 6);
    await seedUsers(store, school, people, connector.url);
    connector.failFor(conversationOf(people[0]!), 502, 2);
    connector.failFor(conversationOf(people[1]!), 504, 1);
    connector.failFor(conversationOf(people[2]!), 412, 1);
    connector.failFor(conversationOf(people[3]!), 502, 50); // never recovers
    const outbox = await started(makeOutbox(store, { maxAttempts: 4, transientPauseAfter: 100 }));
    const { broadcastId } = await outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    await settled(outbox, school, broadcastId);

    const progress = await outbox.progress(school, broadcastId);
    expect(progress).toMatchObject({ delivered: 5, failed: 1 });
    expect(progress.failures).toEqual([{ recipient: people[3], reason: expect.stringMatching(/^gave up after 4 attempts: .*\(502\)/) }]);
    const requestsTo = (i: number) => connector.requests.filter((r) => r.conversationId === conversationOf(people[i]!));
    expect(requestsTo(0).map((r) => r.status)).toEqual([502, 502, 200]);
    expect(requestsTo(1).map((r) => r.status)).toEqual([504, 200]);
    expect(requestsTo(2).map((r) => r.status)).toEqual([412, 200]);
    expect(requestsTo(3)).toHaveLength(4);
    // Backoff: the retries of one item are spread out, not back to back.
    const times = requestsTo(3).map((r) => r.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(15);
    const [items] = [await store.list<OutboxItem>('outbox', school, { idPrefix: `${broadcastId}:` })];
    expect(items.find((item) => item.data.recipient === people[0])!.data).toMatchObject({ state: 'delivered', attempts: 3 });

    // A network failure (nothing listening) is transient too.
    const down = newSchool();
    await seedUsers(store, down, ['gone'], 'http://127.0.0.1:9');
    const second = await outbox.enqueue(down, [{ recipient: 'gone', replies: alert() }]);
    await settled(outbox, down, second.broadcastId);
    expect((await outbox.progress(down, second.broadcastId)).failures).toEqual([{ recipient: 'gone', reason: expect.stringMatching(/^gave up after 4 attempts: Teams could not be reached/) }]);
  });

  it('pauses the whole school on a 429, once for every worker of two instances, and resumes when Retry-After has passed', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const total = n(300);
    const people = ids('r', total);
    await seedUsers(store, school, people, connector.url);
    const log = memoryLog('warn');
    // When each instance decided to send (the moment the outbox hands a message to the adapter).
    const sends: Array<{ by: 'one' | 'two'; at: number }> = [];
    const teams = teamsSender();
    const recording = (by: 'one' | 'two') => async (reference: unknown, replies: Reply[]) => {
      sends.push({ by, at: Date.now() });
      await teams(reference, replies);
    };
    // Two instances (their own store connections), 8 workers each, at 100 a second between them.
    const rates = { teams: { perSecond: 200, burst: 5, perConversationPerSecond: 100, perConversationBurst: 100 } };
    const one = await started(makeOutbox(await kind.open(), { rates, chunkSize: 10 }, { log: log.log, send: recording('one') }));
    const two = await started(makeOutbox(await kind.open(), { rates, chunkSize: 10 }, { log: log.log, send: recording('two') }));
    const { broadcastId } = await one.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    two.wake(school);
    await waitUntil(() => two.stats().delivered > 5 && one.stats().delivered > 5, 15_000, 'both instances sending');
    connector.failNext(429, 1, { 'Retry-After': '1' });
    await waitUntil(() => connector.requests.some((r) => r.status === 429), 10_000, 'the 429');
    await settled(one, school, broadcastId, 30_000);

    // One pause, recorded by the instance that met the 429; the other honoured the shared record.
    expect(one.stats().pausesStarted + two.stats().pausesStarted).toBe(1);
    expect(log.lines().filter((line) => line.msg === 'outbox: school sending paused')).toHaveLength(1);
    const pause = (await store.get<{ until: string; at: string; by: string; reason: string }>({ kind: 'outbox-pause', school, id: 'school' }))!.data;
    expect(pause.reason).toBe('throttled');
    const [pausedAt, until] = [Date.parse(pause.at), Date.parse(pause.until)];
    expect(until - pausedAt).toBeGreaterThanOrEqual(990);
    // From the moment of the pause no send starts until Retry-After has passed: at once in the
    // instance that met the 429, within pauseCheckMs (50 ms, plus a little) in the other.
    const starter = pause.by === one.instanceId ? 'one' : 'two';
    const during = sends.filter((s) => s.at < until - 5 && s.at > (s.by === starter ? pausedAt + 5 : pausedAt + 150));
    expect(during, JSON.stringify(sends.filter((s) => s.at > pausedAt - 100 && s.at < until + 100).map((s) => [s.by, s.at - pausedAt]))).toEqual([]);
    expect(sends.filter((s) => s.at >= until).length).toBeGreaterThan(0);
    // At the connector: nothing but what was already on its way (one per worker) until then.
    const throttledAt = connector.requests.find((r) => r.status === 429)!.at;
    expect(connector.requests.filter((r) => r.at > throttledAt && r.at < until).length).toBeLessThanOrEqual(one.options.concurrency + two.options.concurrency + 5);
    // Nobody missed, nobody twice: the throttled item went back in line.
    expect(await one.progress(school, broadcastId)).toMatchObject({ delivered: total, failed: 0 });
    expect(new Set(connector.deliveries.map((d) => d.conversationId)).size).toBe(total);
    const odd = (await store.list<OutboxItem>('outbox', school, { idPrefix: `${broadcastId}:` })).filter((i) => i.data.attempts > 1 || i.data.recovered > 0).map((i) => i.data);
    expect(connector.deliveries, JSON.stringify(odd)).toHaveLength(total);
  });

  it.skipIf(notSqlite)('makes one pause of several workers throttled at once', async () => {
    connector = await startLimitedConnector({ latencyMs: 20 });
    const school = newSchool();
    const people = ids('m', 40);
    await seedUsers(store, school, people, connector.url);
    const outbox = await started(makeOutbox(store, { concurrency: 8 }));
    connector.failNext(429, 4, { 'Retry-After': '1' });
    const { broadcastId } = await outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    await settled(outbox, school, broadcastId);
    expect(connector.requests.filter((r) => r.status === 429)).toHaveLength(4);
    expect(outbox.stats()).toMatchObject({ throttled: 4, pausesStarted: 1, delivered: 40 });
    const last429 = Math.max(...connector.requests.filter((r) => r.status === 429).map((r) => r.at));
    const first429 = Math.min(...connector.requests.filter((r) => r.status === 429).map((r) => r.at));
    expect(connector.requests.filter((r) => r.status === 200 && r.at > last429 + 100 && r.at < first429 + 950)).toEqual([]);
    expect(new Set(connector.deliveries.map((d) => d.conversationId)).size).toBe(40);
  });

  it.skipIf(notSqlite)('honours Retry-After, and without it backs off exponentially with jitter', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const people = ids('w', 12);
    await seedUsers(store, school, people, connector.url);
    const outbox = await started(makeOutbox(store, { concurrency: 1, throttleBaseMs: 400 }));
    connector.failNext(429, 1, { 'Retry-After': '2' });
    const first = await outbox.enqueue(school, people.slice(0, 6).map((recipient) => ({ recipient, replies: alert() })));
    await settled(outbox, school, first.broadcastId);
    const [throttled, next] = connector.requests;
    expect(throttled!.status).toBe(429);
    expect(next!.at - throttled!.at).toBeGreaterThanOrEqual(1990);

    // No Retry-After: 200 to 400 ms for a first pause (throttleBaseMs 400, half of it as jitter)...
    const before = connector.requests.length;
    connector.failNext(429, 1);
    const second = await outbox.enqueue(school, people.slice(6).map((recipient) => ({ recipient, replies: alert() })));
    await settled(outbox, school, second.broadcastId);
    const [again, after] = connector.requests.slice(before);
    expect(again!.status).toBe(429);
    expect(after!.at - again!.at).toBeGreaterThanOrEqual(190);
    expect(after!.at - again!.at).toBeLessThan(3000);
    expect(connector.deliveries).toHaveLength(12);
  });

  it('cancels a broadcast in progress: what was not yet sent is never sent', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const total = n(200);
    const people = ids('c', total);
    await seedUsers(store, school, people, connector.url);
    const outbox = await started(makeOutbox(store, { rates: { teams: { perSecond: 60 * scale, burst: 1, perConversationPerSecond: 100, perConversationBurst: 100 } } }));
    const { broadcastId } = await outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    await connector.waitForDeliveries(n(20), 10_000);
    const cancelled = await outbox.cancel(school, broadcastId);
    const deliveredAtCancel = connector.deliveries.length;
    expect(cancelled).toBeGreaterThan(total / 2);
    await settled(outbox, school, broadcastId);
    await new Promise((resolve) => setTimeout(resolve, 300));

    // Only sends already on their way when cancel returned could still land.
    expect(connector.deliveries.length - deliveredAtCancel).toBeLessThanOrEqual(outbox.options.concurrency);
    const progress = await outbox.progress(school, broadcastId);
    expect(progress.delivered).toBe(connector.deliveries.length);
    expect(progress.delivered + progress.cancelled).toBe(total);
    expect(progress.cancelled).toBe(cancelled);
    expect(progress).toMatchObject({ pending: 0, inflight: 0, failed: 0, state: 'cancelled' });
    expect(await outbox.cancel(school, broadcastId)).toBe(0);
  });

  it('sends a scheduled broadcast at its time, not before, and cancels one before it starts', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const people = ids('s', 10);
    await seedUsers(store, school, people, connector.url);
    const outbox = await started(makeOutbox(store));
    const at = new Date(Date.now() + 1200);
    const { broadcastId } = await outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })), { notBefore: at });
    const later = await outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: alert('never') })), { notBefore: new Date(Date.now() + 60_000) });
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(connector.deliveries).toHaveLength(0);
    expect(await outbox.progress(school, broadcastId)).toMatchObject({ pending: 10, delivered: 0, notBefore: at.toISOString() });
    expect(await outbox.cancel(school, later.broadcastId)).toBe(10);

    await connector.waitForDeliveries(10, 5000);
    expect(Math.min(...connector.deliveries.map((d) => d.at))).toBeGreaterThanOrEqual(at.getTime());
    await settled(outbox, school, broadcastId);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(connector.deliveries).toHaveLength(10);
    expect(await outbox.progress(school, later.broadcastId)).toMatchObject({ cancelled: 10, delivered: 0, state: 'cancelled' });
  });

  it('two instances on one store share the work and never send one item twice', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const total = n(400);
    const people = ids('d', total);
    await seedUsers(store, school, people, connector.url);
    const one = await started(makeOutbox(await kind.open(), { chunkSize: Math.ceil(25 * scale) }));
    const two = await started(makeOutbox(await kind.open(), { chunkSize: Math.ceil(25 * scale) }));
    const { broadcastId } = await one.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    two.wake(school);
    await settled(one, school, broadcastId, 30_000);

    expect(connector.deliveries).toHaveLength(total);
    expect(new Set(connector.deliveries.map((d) => d.conversationId)).size).toBe(total);
    expect(one.stats().delivered + two.stats().delivered).toBe(total);
    expect(one.stats().delivered).toBeGreaterThan(0);
    expect(two.stats().delivered).toBeGreaterThan(0);
  });

  it('after a crash mid-broadcast, another instance resumes with no gap, re-sending at most the items that were in flight', async () => {
    connector = await startLimitedConnector({ latencyMs: 5 });
    const school = newSchool();
    const total = n(300);
    const people = ids('k', total);
    await seedUsers(store, school, people, connector.url);
    // The first instance "crashes" after 120 deliveries: from then on its store refuses everything
    // (nothing it learns is recorded, as if the process had died) and its sends never return.
    let crashed = false;
    const real = await kind.open();
    const dying: Store = new Proxy(real, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || property === 'close') return value;
        return (...args: unknown[]) => (crashed ? new Promise(() => undefined) : (value as (...a: unknown[]) => unknown).apply(target, args));
      },
    });
    const send = teamsSender();
    const first = makeOutbox(dying, { concurrency: 12, leaseMs: 1500, sendTimeoutMs: 1000 }, {
      send: async (reference, replies) => {
        if (crashed) return new Promise(() => undefined);
        await send(reference, replies);
        if (connector.deliveries.length >= n(120)) crashed = true;
      },
    });
    await first.start();
    const { broadcastId } = await first.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    await waitUntil(() => crashed, 15_000, 'the crash');
    const deliveredAtCrash = connector.deliveries.length;

    const second = await started(makeOutbox(await kind.open(), { concurrency: 12, leaseMs: 1500, sendTimeoutMs: 1000 }));
    await settled(second, school, broadcastId, 30_000);

    const perPerson = people.map((person) => connector.counts.get(conversationOf(person)) ?? 0);
    expect(perPerson.filter((n) => n === 0)).toEqual([]); // no gap
    const duplicates = perPerson.filter((n) => n > 1).length;
    expect(duplicates).toBeLessThanOrEqual(first.options.concurrency); // at most what was in flight
    expect(second.stats().recovered).toBeLessThanOrEqual(first.options.concurrency);
    expect(deliveredAtCrash).toBeGreaterThanOrEqual(n(120));
    expect(await second.progress(school, broadcastId)).toMatchObject({ delivered: total, failed: 0, pending: 0, inflight: 0 });
    // The dead instance is left as it is (its process is gone); its leases expired on their own.
  });

  it.skipIf(notSqlite)('keeps within the school\'s rate and a conversation\'s own limit, and a one-person message is not stuck behind a big alert', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    const people = ids('f', 400);
    await seedUsers(store, school, [...people, 'coordinator'], connector.url);
    const outbox = await started(makeOutbox(store, { chunkSize: 25, rates: { teams: { perSecond: 100, burst: 1, perConversationPerSecond: 2, perConversationBurst: 2 } } }));
    const started_ = Date.now();
    const big = await outbox.enqueue(school, people.map((recipient) => ({ recipient, replies: alert() })));
    await connector.waitForDeliveries(30, 10_000);
    const small = await outbox.enqueue(school, [{ recipient: 'coordinator', replies: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }, { type: 'text', text: 'three' }] }]);
    const enqueuedAt = Date.now();
    await settled(outbox, school, small.broadcastId);
    const toCoordinator = connector.deliveries.filter((d) => d.conversationId === conversationOf('coordinator'));
    expect(toCoordinator).toHaveLength(3);
    // Three replies into one conversation that allows 2 at once and 2 a second wait about 0.5 s for
    // room; and round-robin between broadcasts: it went long before the rest of the alert.
    expect(toCoordinator[0]!.at - enqueuedAt).toBeGreaterThanOrEqual(400);
    expect(toCoordinator[0]!.at - enqueuedAt).toBeLessThan(3000);
    await settled(outbox, school, big.broadcastId);
    expect(connector.deliveries.filter((d) => d.at > toCoordinator[2]!.at).length).toBeGreaterThan(150);
    // 403 requests at 100 a second take at least 4 s (a limiter can only be slower, never faster).
    expect(Date.now() - started_).toBeGreaterThanOrEqual(3950);
  });

  it('enqueue is idempotent by broadcast id and refuses bad input', async () => {
    connector = await startLimitedConnector();
    const school = newSchool();
    await seedUsers(store, school, ['a', 'b'], connector.url);
    const outbox = await started(makeOutbox(store));
    const messages = [{ recipient: 'a', replies: alert() }, { recipient: 'b', replies: alert() }];
    const first = await outbox.enqueue(school, messages, { broadcastId: 'alert-1' });
    const again = await outbox.enqueue(school, messages, { broadcastId: 'alert-1' });
    expect(again).toEqual(first);
    await settled(outbox, school, 'alert-1');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(connector.deliveries).toHaveLength(2);
    await expect(outbox.enqueue(school, messages, { broadcastId: 'bad:id' })).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(outbox.enqueue(school, [{ recipient: 'a', replies: [] }])).rejects.toMatchObject({ code: 'validation_failed' });
    expect(await outbox.enqueue(school, [])).toMatchObject({ count: 0 });
    await expect(outbox.progress(school, 'no-such')).rejects.toMatchObject({ code: 'not_found' });
    const later = await outbox.enqueue(school, messages, { notBefore: new Date(Date.now() + 60_000) });
    await expect(outbox.purge(school, later.broadcastId)).rejects.toMatchObject({ code: 'conflict' });
    // The retention sweep leaves a broadcast that has not finished alone, however old the cut-off.
    await outbox.purgeFinished(school, new Date(Date.now() + 365 * 24 * 60 * 60 * 1000));
    expect(await store.list('outbox', school, { idPrefix: `${later.broadcastId}:` })).toHaveLength(2);
  });
});
