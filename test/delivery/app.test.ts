/**
 * The outbox and the job runner as the app wires them (src/main.ts): createApp starts both, a
 * broadcast goes out through the real Teams channel, App.close stops them cleanly mid-broadcast
 * (what was not sent goes back in line, nothing is left in flight), and the next process on the
 * same data folder finishes it with no gap and no duplicate.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLimitedConnector, type LimitedConnector } from '../../bench/lib/limited-connector.ts';
import { broadcastToSchool } from '../../src/delivery/broadcast.ts';
import type { OutboxItem } from '../../src/delivery/outbox.ts';
import { loadSettings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { createApp, type App, type DeliveryOptions } from '../../src/main.ts';
import { repoRoot } from '../helpers/app.ts';
import { alert, conversationOf, ids, seedUsers, waitUntil } from './helpers.ts';

const SCHOOL = 'default';
let dataDir: string;
let connector: LimitedConnector;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-delivery-app-'));
  connector = await startLimitedConnector();
});
afterAll(async () => {
  await connector.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function app(delivery: DeliveryOptions): Promise<App> {
  const settings = loadSettings({
    PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dataDir,
    POLICIES_DIR: path.join(repoRoot, 'policies'), RATE_LIMIT_PER_MINUTE: '0', PLAYGROUND_ENABLED: 'false',
  });
  const created = await createApp(settings, silentLogger(), { delivery });
  await created.listen();
  return created;
}

const slow: DeliveryOptions = { outbox: { pollMs: 50, idlePollMs: 200, rates: { teams: { perSecond: 40, burst: 1 } } }, jobs: { pollMs: 100 } };

describe('delivery in the app', () => {
  it('sends a broadcast through the Teams channel; close() stops mid-way cleanly and the next start finishes it, no gap, no duplicate', async () => {
    const first = await app(slow);
    expect(first.outbox.running).toBe(true);
    expect(first.jobs.running).toBe(true);
    const people = ids('staff', 80);
    await seedUsers(first.store, SCHOOL, people, connector.url);
    // Everyone in the directory: the 80, and whoever the app created at start-up (the playground's
    // people are off here).
    const { broadcastId, count } = await broadcastToSchool({ directory: first.directory, queue: first.outbox }, SCHOOL, alert(), { origin: 'alert' });
    expect(count).toBeGreaterThanOrEqual(80);
    await connector.waitForDeliveries(20, 10_000);
    const closing = Date.now();
    await first.close();
    expect(Date.now() - closing).toBeLessThan(5000);
    expect(first.outbox.running).toBe(false);
    const atClose = connector.deliveries.length;

    // Nothing was left in flight: a clean stop hands everything back.
    const { createSqliteStore } = await import('../../src/store/sqlite/sqlite-store.ts');
    const peek = createSqliteStore({ file: path.join(dataDir, 'esafety.sqlite') });
    const items = await peek.list<OutboxItem>('outbox', SCHOOL, { idPrefix: `${broadcastId}:` });
    await peek.close();
    expect(items.filter((item) => item.data.state === 'inflight')).toEqual([]);
    expect(items.filter((item) => item.data.state === 'delivered')).toHaveLength(atClose);

    const second = await app({ ...slow, outbox: { ...slow.outbox, rates: { teams: { perSecond: 500, burst: 10 } } } });
    try {
      await waitUntil(async () => {
        const p = await second.outbox.progress(SCHOOL, broadcastId);
        return p.pending + p.inflight === 0;
      }, 15_000, 'the rest of the broadcast');
      for (const person of people) expect(connector.counts.get(conversationOf(person)), person).toBe(1);
      const progress = await second.outbox.progress(SCHOOL, broadcastId);
      expect(progress.delivered).toBe(80);
      // Anyone else in the directory has no conversation with the bot: recorded, not retried.
      expect(progress.failures.every((f) => f.reason === 'no conversation with this person yet')).toBe(true);
    } finally {
      await second.close();
    }
  });
});
