/**
 * The app under bench/broadcast.ts: the real server (createApp: restify, the Teams adapter, SQLite
 * in the DATA_DIR the parent prepared), its outbox tuned by the parent (rate, in-flight window).
 * Driven over IPC: `broadcast` enqueues one alert to every seeded person (as the coordinator's
 * alert will), `progress` reports on it. A restarted child just starts: its outbox picks the
 * broadcast up from the store.
 */
import '../lib/loopback-guard.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { card } from '../../src/bot/reply.ts';
import { loadSettings } from '../../src/config.ts';
import { broadcastToSchool } from '../../src/delivery/broadcast.ts';
import { silentLogger } from '../../src/logger.ts';
import { createApp } from '../../src/main.ts';

export type ToBroadcastChild = { type: 'broadcast'; school: string; prefix: string } | { type: 'progress'; school: string; broadcastId: string };
export type FromBroadcastChild =
  | { type: 'ready'; port: number }
  | { type: 'enqueued'; broadcastId: string; count: number; ms: number }
  | { type: 'progress'; pending: number; inflight: number; delivered: number; failed: number; stats: Record<string, number> }
  | { type: 'error'; message: string };

if (!process.send) throw new Error('this file is started by bench/broadcast.ts (it needs an IPC channel)');
const send = (message: FromBroadcastChild) => process.send!(message);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const settings = loadSettings({
  PORT: '0',
  HOST: '127.0.0.1',
  NODE_ENV: 'test',
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
  DATA_DIR: process.env.DATA_DIR!,
  POLICIES_DIR: path.join(repoRoot, 'policies'),
  RATE_LIMIT_PER_MINUTE: '0',
  PLAYGROUND_ENABLED: 'false',
});
const rate = Number(process.env.BENCH_RATE);
const app = await createApp(settings, silentLogger(), {
  delivery: {
    outbox: {
      concurrency: Number(process.env.BENCH_CONCURRENCY),
      // A tenth of a second's catch-up after a stall (a garbage collection, a busy event loop).
      rates: { teams: { perSecond: rate, burst: Math.max(1, Math.round(rate / 10)) } },
    },
  },
});
const port = await app.listen();

const alert = [
  card({
    kind: 'alert',
    title: 'Emerging issue: a viral "challenge" video',
    tone: 'attention',
    blocks: [
      { type: 'text', text: 'Pupils are sharing a video that encourages a dangerous stunt. Do not show it in class or search for it on school devices.' },
      { type: 'text', text: 'If a pupil mentions it, listen, reassure them, and tell the DSL today.' },
    ],
    actions: [{ type: 'openUrl', title: 'Read the guidance', url: 'https://example.invalid/guidance' }],
  }),
];

process.on('message', (message: ToBroadcastChild) => {
  void (async () => {
    try {
      if (message.type === 'broadcast') {
        const started = Date.now();
        const { broadcastId, count } = await broadcastToSchool({ directory: app.directory, queue: app.outbox }, message.school, alert, {
          filter: (user) => user.id.startsWith(message.prefix),
          origin: 'alert',
        });
        send({ type: 'enqueued', broadcastId, count, ms: Date.now() - started });
      } else {
        const progress = await app.outbox.progress(message.school, message.broadcastId);
        send({ type: 'progress', pending: progress.pending, inflight: progress.inflight, delivered: progress.delivered, failed: progress.failed, stats: { ...app.outbox.stats() } });
      }
    } catch (error) {
      send({ type: 'error', message: String((error as Error)?.stack ?? error) });
    }
  })();
});
process.on('disconnect', () => {
  void app.close().finally(() => process.exit(0));
});
send({ type: 'ready', port });
