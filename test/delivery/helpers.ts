/**
 * What the delivery tests share: the two stores (SQLite on a temporary file, Cosmos DB on the
 * in-process local server; several connections to one store stand for several server instances),
 * the real Teams adapter's sender pointed at a loopback connector, users seeded in the directory,
 * and outboxes with short timings.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createHttpServer } from '@zeit/cosmosdb-server';
import { createTeamsChannel } from '../../src/adapters/teams/teams-adapter.ts';
import type { Bot } from '../../src/bot/bot.ts';
import { Directory, type UserRecord } from '../../src/bot/directory.ts';
import { Notifier } from '../../src/bot/notifier.ts';
import type { Reply } from '../../src/bot/reply.ts';
import { loadSettings } from '../../src/config.ts';
import { Outbox, type OutboxOptions } from '../../src/delivery/outbox.ts';
import { silentLogger, type Logger } from '../../src/logger.ts';
import { createCosmosStore } from '../../src/store/cosmos/cosmos-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';

export interface StoreKind {
  name: string;
  /** A new connection to the one shared store (another "instance"). */
  open(): Promise<Store>;
  close(): Promise<void>;
}

export async function sqliteStores(): Promise<StoreKind> {
  const dir = await mkdtemp(path.join(tmpdir(), 'esafety-delivery-'));
  const file = path.join(dir, 'esafety.sqlite');
  const opened: Store[] = [];
  return {
    name: 'SQLite',
    open: async () => {
      const store = createSqliteStore({ file });
      opened.push(store);
      return store;
    },
    close: async () => {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function cosmosStores(): Promise<StoreKind> {
  const server: Server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const database = `delivery-${randomUUID()}`;
  const opened: Store[] = [];
  return {
    name: 'Cosmos DB (local server)',
    open: async () => {
      const store = await createCosmosStore({ endpoint, key: 'dummy-key-not-a-secret-7f3a', database });
      opened.push(store);
      return store;
    },
    close: async () => {
      for (const store of opened) await store.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The real Teams adapter's proactive sender (botbuilder CloudAdapter, no credentials). */
export function teamsSender(): (reference: unknown, replies: Reply[]) => Promise<void> {
  const settings = loadSettings({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: tmpdir() });
  return createTeamsChannel({ settings, bot: {} as Bot, log: silentLogger() }).send;
}

export const conversationOf = (userId: string) => `a:conv-${userId}`;

/** Users with a conversation reference pointing at the connector, as the directory keeps them. */
export async function seedUsers(store: Store, school: string, ids: string[], serviceUrl: string, concurrency = 16): Promise<void> {
  const now = new Date().toISOString();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      const user: UserRecord = {
        id,
        platform: 'teams',
        roles: [],
        reference: { channelId: 'emulator', serviceUrl, conversation: { id: conversationOf(id), conversationType: 'personal' }, user: { id: `29:${id}`, aadObjectId: id }, bot: { id: '28:bot' } },
        firstSeen: now,
        lastSeen: now,
      };
      await store.upsert({ kind: 'user', school, id }, user);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Short timings and generous rates, so a test's broadcast takes well under a second. */
export const FAST: Partial<OutboxOptions> = {
  pollMs: 50,
  idlePollMs: 100,
  pauseCheckMs: 50,
  heartbeatMs: 200,
  retryBaseMs: 40,
  retryMaxMs: 200,
  throttleBaseMs: 300,
  // A send must finish within its claim's lease; generous, as the test machine may be busy.
  leaseMs: 8000,
  sendTimeoutMs: 3000,
  concurrency: 8,
  rates: { teams: { perSecond: 2000, burst: 50, perConversationPerSecond: 100, perConversationBurst: 100 } },
};

/** An outbox wired as main.ts wires it: the directory for recipients, the notifier (Teams sender registered) to send. */
export function makeOutbox(store: Store, options: Partial<OutboxOptions> = {}, extra: { log?: Logger; send?: (reference: unknown, replies: Reply[]) => Promise<void> } = {}): Outbox {
  const log = extra.log ?? silentLogger();
  const directory = new Directory(store, { cacheSeconds: 0 });
  const notifier = new Notifier(directory, log);
  notifier.register('teams', extra.send ?? teamsSender());
  return new Outbox(
    {
      store,
      log,
      recipient: async (school, userId) => (await directory.getUser(school, userId))?.data,
      send: (_school, user, replies) => notifier.deliver(user, replies),
    },
    { ...FAST, ...options, rates: { ...FAST.rates, ...options.rates } },
  );
}

export const alert = (text = 'An emerging issue: please read the update.'): Reply[] => [{ type: 'text', text }];

export const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
