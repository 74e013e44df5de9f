/**
 * `npm run bench:broadcast [-- --recipients 10000 --rate 200 --concurrency 16 --kill-at 0.2-0.8 --seed N]`
 *
 * One alert to N people through the outbox, against a loopback fake Bot Framework connector that
 * enforces a per-bot rate limit (`--rate`, default 200 a second: a token bucket holding half a
 * second's worth) and answers 429 with Retry-After beyond it. The connector runs in this process and
 * records every delivery; it removes nothing, so duplicates and gaps are counted exactly.
 *
 * The app is a child process: the real server (createApp: restify, the Teams adapter, SQLite in a
 * temporary DATA_DIR) with the N people seeded in its directory, their conversation references
 * pointing at the fake connector. Its outbox is set to the same rate (a deployment sets it to the
 * platform's published limit) and to an in-flight window of `--concurrency` items.
 *
 * Run 1 (clean): trigger, wait until everyone has it. seconds = trigger to last delivery; minimum =
 * N / rate; ratio = seconds / minimum (target at most 1.15); duplicates and missing must be 0.
 * Run 2 (crash): a fresh data folder, trigger, SIGKILL the child at a random moment (between 20%
 * and 80% delivered by default), start it again on the same folder, let it finish. Every person
 * must get the alert (missing counts both runs); restart_duplicates (people who got it twice) must
 * not exceed inflight_bound (the in-flight window: items claimed but not yet marked when the
 * process died).
 *
 * Last line, exactly: broadcast: recipients=N seconds=S minimum=M ratio=R duplicates=D missing=X
 * restart_duplicates=RD inflight_bound=B
 */
import './lib/loopback-guard.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Directory } from '../src/bot/directory.ts';
import type { UserRecord } from '../src/bot/directory.ts';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { startLimitedConnector, type LimitedConnector } from './lib/limited-connector.ts';
import { flagArg, intArg, stringArg } from './lib/stats.ts';
import type { FromBroadcastChild, ToBroadcastChild } from './targets/broadcast-app.ts';

const argv = process.argv.slice(2);
if (flagArg(argv, 'help')) {
  console.log('usage: npm run bench:broadcast -- [--recipients 10000] [--rate 200] [--concurrency 16] [--kill-at 0.2-0.8] [--seed N] [--no-restart] [--cpu-prof-dir DIR]');
  process.exit(0);
}
const recipients = intArg(argv, 'recipients', 10_000);
const rate = intArg(argv, 'rate', 200);
const concurrency = intArg(argv, 'concurrency', 16);
const seed = intArg(argv, 'seed', Date.now() % 1_000_000);
const [killLow, killHigh] = (stringArg(argv, 'kill-at') ?? '0.2-0.8').split('-').map(Number) as [number, number];
const restart = !flagArg(argv, 'no-restart');
/** Writes a V8 CPU profile of each app process into this folder (read it with bench/profile-summary.ts). */
const profileDir = stringArg(argv, 'cpu-prof-dir');
const TARGET_RATIO = 1.15;
const SCHOOL = 'default';
const PREFIX = 'bench-';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');

/** Deterministic from --seed, so a run can be repeated. */
function random(): number {
  let t = (seed + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const log = (line: string) => console.log(line);
const person = (i: number) => `${PREFIX}${String(i).padStart(6, '0')}`;
const conversationOf = (id: string) => `a:bench-${id}`;

/** The school and N people in a fresh data folder, each with a conversation reference to the connector. */
async function prepare(dataDir: string, connectorUrl: string): Promise<void> {
  const store = createSqliteStore({ file: path.join(dataDir, 'esafety.sqlite') });
  const directory = new Directory(store, { cacheSeconds: 0 });
  await directory.upsertSchool({ id: SCHOOL, name: 'Harbour Lane Academy' });
  const now = new Date().toISOString();
  for (let i = 0; i < recipients; i++) {
    const id = person(i);
    const user: UserRecord = {
      id,
      platform: 'teams',
      name: `Staff ${i}`,
      roles: [],
      reference: { channelId: 'msteams', serviceUrl: connectorUrl, conversation: { id: conversationOf(id), conversationType: 'personal' }, user: { id: `29:${id}`, aadObjectId: id }, bot: { id: '28:bot' } },
      firstSeen: now,
      lastSeen: now,
    };
    await store.upsert({ kind: 'user', school: SCHOOL, id }, user);
  }
  await store.close();
}

interface Child {
  process: ChildProcess;
  ask(message: ToBroadcastChild): Promise<FromBroadcastChild>;
}

function startChild(dataDir: string): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(here, 'targets', 'broadcast-app.ts'), [], {
      cwd: repoRoot,
      execArgv: ['--import', 'tsx', '--disable-warning=DEP0111', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
      env: { ...process.env, DATA_DIR: dataDir, BENCH_RATE: String(rate), BENCH_CONCURRENCY: String(concurrency) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const waiting: Array<(message: FromBroadcastChild) => void> = [];
    child.on('message', (message: FromBroadcastChild) => {
      if (message.type === 'ready') {
        resolve({
          process: child,
          ask: (question) =>
            new Promise((answer) => {
              waiting.push(answer);
              child.send(question);
            }),
        });
        return;
      }
      if (message.type === 'error') console.error(`child: ${message.message}`);
      waiting.shift()?.(message);
    });
    child.once('exit', (code, signal) => reject(new Error(`the app exited before it was ready (${signal ?? code})`)));
  });
}

async function stopChild(child: Child): Promise<void> {
  const exited = new Promise((resolve) => child.process.once('exit', resolve));
  child.process.disconnect();
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
  if (child.process.exitCode === null) child.process.kill('SIGKILL');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How many people got the alert at least once, and how many got it more than once. */
function tally(connector: LimitedConnector, since: number): { distinct: number; duplicates: number; extra: number; total: number; last: number } {
  const counts = new Map<string, number>();
  let last = 0;
  let total = 0;
  for (let i = since; i < connector.deliveries.length; i++) {
    const delivery = connector.deliveries[i]!;
    counts.set(delivery.conversationId, (counts.get(delivery.conversationId) ?? 0) + 1);
    last = Math.max(last, delivery.at);
    total++;
  }
  let duplicates = 0;
  let extra = 0;
  for (const n of counts.values()) if (n > 1) {
    duplicates++;
    extra += n - 1;
  }
  return { distinct: counts.size, duplicates, extra, total, last };
}

/** Waits until every person has had it (connector) and the outbox has nothing left (child). */
async function untilDone(connector: LimitedConnector, since: number, child: () => Child, broadcastId: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`timed out: ${tally(connector, since).distinct} of ${recipients} delivered`);
    if (tally(connector, since).distinct >= recipients) {
      const progress = await child().ask({ type: 'progress', school: SCHOOL, broadcastId });
      if (progress.type === 'progress' && progress.pending + progress.inflight === 0) return;
    }
    await sleep(250);
  }
}

async function cleanRun(connector: LimitedConnector): Promise<{ seconds: number; duplicates: number; missing: number; throttled: number; enqueueMs: number }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'esafety-bench-broadcast-'));
  try {
    await prepare(dataDir, connector.url);
    const child = await startChild(dataDir);
    const since = connector.deliveries.length;
    const requestsBefore = connector.requests.length;
    const started = Date.now();
    const enqueued = await child.ask({ type: 'broadcast', school: SCHOOL, prefix: PREFIX });
    if (enqueued.type !== 'enqueued') throw new Error('the broadcast was not enqueued');
    log(`clean run: enqueued ${enqueued.count} in ${(enqueued.ms / 1000).toFixed(2)} s`);
    await untilDone(connector, since, () => child, enqueued.broadcastId, 10 * 60_000);
    const result = tally(connector, since);
    const throttled = connector.requests.slice(requestsBefore).filter((r) => r.status === 429).length;
    await stopChild(child);
    const seconds = (result.last - started) / 1000;
    const first = (connector.deliveries[since]!.at - started) / 1000;
    log(`clean run: ${result.total} deliveries to ${result.distinct} people in ${seconds.toFixed(2)} s (first after ${first.toFixed(2)} s, then ${((result.total - 1) / (seconds - first)).toFixed(1)}/s); ${throttled} answered 429; duplicates ${result.duplicates}`);
    return { seconds, duplicates: result.duplicates, missing: recipients - result.distinct, throttled, enqueueMs: enqueued.ms };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function crashRun(connector: LimitedConnector): Promise<{ duplicates: number; missing: number; killedAt: number; seconds: number }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'esafety-bench-broadcast-'));
  try {
    await prepare(dataDir, connector.url);
    let child = await startChild(dataDir);
    const since = connector.deliveries.length;
    const started = Date.now();
    const enqueued = await child.ask({ type: 'broadcast', school: SCHOOL, prefix: PREFIX });
    if (enqueued.type !== 'enqueued') throw new Error('the broadcast was not enqueued');
    const fraction = killLow + random() * (killHigh - killLow);
    const killAt = Math.floor(fraction * recipients);
    while (connector.deliveries.length - since < killAt) await sleep(5);
    child.process.kill('SIGKILL');
    await new Promise((resolve) => child.process.once('exit', resolve));
    const atKill = tally(connector, since);
    log(`crash run: SIGKILL after ${atKill.distinct} of ${recipients} (${(fraction * 100).toFixed(0)}%, seed ${seed})`);
    child = await startChild(dataDir);
    await untilDone(connector, since, () => child, enqueued.broadcastId, 10 * 60_000);
    const result = tally(connector, since);
    await stopChild(child);
    const seconds = (result.last - started) / 1000;
    log(`crash run: ${result.total} deliveries to ${result.distinct} people in ${seconds.toFixed(2)} s including the restart; ${result.duplicates} got it twice`);
    return { duplicates: result.duplicates, missing: recipients - result.distinct, killedAt: atKill.distinct, seconds };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const connector = await startLimitedConnector({ ratePerSecond: rate });
try {
  log(`broadcast bench: ${recipients} recipients, connector limit ${rate}/s (429 + Retry-After beyond), outbox at ${rate}/s with ${concurrency} in flight`);
  const clean = await cleanRun(connector);
  const crash = restart ? await crashRun(connector) : { duplicates: 0, missing: 0, killedAt: 0, seconds: 0 };
  const minimum = recipients / rate;
  const ratio = clean.seconds / minimum;
  const missing = clean.missing + crash.missing;
  const ok = ratio <= TARGET_RATIO && clean.duplicates === 0 && missing === 0 && crash.duplicates <= concurrency;
  log(`target: ratio at most ${TARGET_RATIO}, no duplicate and no one missing, restart duplicates at most the in-flight window: ${ok ? 'met' : 'NOT met'}`);
  log(
    `broadcast: recipients=${recipients} seconds=${clean.seconds.toFixed(2)} minimum=${Number(minimum.toFixed(2))} ratio=${ratio.toFixed(3)} duplicates=${clean.duplicates} missing=${missing} restart_duplicates=${crash.duplicates} inflight_bound=${concurrency}`,
  );
  process.exitCode = clean.duplicates === 0 && missing === 0 && crash.duplicates <= concurrency ? 0 : 1;
} finally {
  await connector.close();
}
