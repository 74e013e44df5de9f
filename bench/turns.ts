/**
 * `npm run bench [-- --concurrency 8 --turns 2000 --rounds 6 --warmup 400 --with-reports --cpu-prof]`
 *
 * How much slower is an esafety-bot turn than the smallest botbuilder bot on the same stack?
 * Three child processes, each started the same way (node --import tsx, same flags):
 *   (a) the real esafety-bot app (createApp from src/main.ts, temp DATA_DIR, NODE_ENV=test,
 *       LOG_LEVEL=silent, RATE_LIMIT_PER_MINUTE=0, the sample policies in ./policies);
 *   (b) an echo bot: restify + bodyParser + CloudAdapter (no app id), logic = sendActivity(text);
 *   a fake connector both reply to (200 {"id":"x"}), on loopback.
 * This process drives POST /api/messages with message Activities at a fixed concurrency, first a
 * warm-up, then rounds alternating A/B/A/B… so the machine's noise hits both. The two bots get the
 * very same sequence of request bodies (realistic teacher questions from a few users). Latency is
 * the time for the POST to complete: CloudAdapter answers after the turn, which includes the
 * reply's POST to the connector.
 *
 * A benchmark, not a test: it prints medians and ratios measured side by side; it fails only when
 * the bots do not work (non-200 answers, missing or apology replies).
 */
import './lib/loopback-guard.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { messageActivity } from '../test/helpers/activities.ts';
import { compareAreas, formatSummary, summarizeProfile } from './lib/cpuprofile.ts';
import { flagArg, intArg, mean, ms, percentile, sortedCopy, stringArg, table } from './lib/stats.ts';
import type { Command, FromChild, ToChild, Usage } from './targets/protocol.ts';

const argv = process.argv.slice(2);
if (flagArg(argv, 'help')) {
  console.log('usage: npm run bench -- [--concurrency 8] [--turns 2000] [--rounds 6] [--warmup 400] [--users 5] [--with-reports] [--cpu-prof] [--profile-dir DIR]');
  process.exit(0);
}
const concurrency = intArg(argv, 'concurrency', 8);
const turns = intArg(argv, 'turns', 2000);
const rounds = Math.min(intArg(argv, 'rounds', 6), turns);
const warmup = intArg(argv, 'warmup', 400);
const userCount = intArg(argv, 'users', 5);
const profile = flagArg(argv, 'cpu-prof');
const TARGET_RATIO = 1.3;

/**
 * What teachers type, as they type it: questions about the policies, long and short. The issue asks
 * for the latency of a question turn, so reports (which answer with the immediate safeguarding
 * steps and the report form: three messages) are left out of the mix unless --with-reports.
 */
const policyQuestions = [
  'can kids use phones in class',
  'what do i do if a pupil sends a nude',
  'guest wifi?',
  'can i use chatgpt to help write my reports',
  'is it ok to email pupil data to my personal gmail',
  'how long does my password need to be',
  'can i accept a friend request from a parent on facebook',
  'are smartwatches allowed in exams',
  'can i take photos of the class on my own phone for the newsletter',
  'who is our designated safeguarding lead',
  'can i take work home on a usb stick',
  'what happens if a student is caught using a vpn',
  'are we allowed to record live lessons',
  'can i message a student on whatsapp about homework',
  'can sixth formers use their phones at lunch',
  'is tiktok blocked on the school network',
  'can pupils use ai for their coursework',
];
/** Reports and disclosures, included with --with-reports. */
const reports = [
  'a pupil just told me someone online keeps asking her for photos',
  'my school laptop got nicked from my car what now',
  'i think my email account has been hacked',
];
const questions = flagArg(argv, 'with-reports') ? [...policyQuestions, ...reports] : policyQuestions;
const users = Array.from({ length: userCount }, (_, i) => ({ id: `bench-teacher-${i + 1}`, name: `Bench Teacher ${i + 1}` }));

// ---------------------------------------------------------------------------------------------
// Child processes

interface Child {
  name: string;
  process: ChildProcess;
  port: number;
  request(command: Command, file?: string): Promise<Usage | undefined>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const children: Child[] = [];

function startChild(name: string, file: string): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(here, 'targets', file), [], {
      cwd: repoRoot,
      execArgv: ['--import', 'tsx', '--disable-warning=DEP0111'],
      env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let seq = 0;
    const pending = new Map<number, { resolve: (usage: Usage | undefined) => void; reject: (error: Error) => void }>();
    child.on('message', (message: FromChild) => {
      if (message.type === 'ready') {
        const entry: Child = {
          name,
          process: child,
          port: message.port,
          request: (command, target) =>
            new Promise((ok, fail) => {
              const id = ++seq;
              pending.set(id, { resolve: ok, reject: fail });
              child.send({ seq: id, command, file: target } satisfies ToChild);
            }),
        };
        children.push(entry);
        resolve(entry);
      } else {
        const waiter = pending.get(message.seq);
        pending.delete(message.seq);
        if (message.error) waiter?.reject(new Error(`${name}: ${message.error}`));
        else waiter?.resolve(message.usage);
      }
    });
    child.once('exit', (code) => {
      for (const waiter of pending.values()) waiter.reject(new Error(`${name} exited (${code})`));
      reject(new Error(`${name} exited before it was ready (code ${code})`));
    });
  });
}

async function stopChildren(): Promise<void> {
  await Promise.all(
    children.splice(0).map(async (child) => {
      const exited = new Promise<void>((resolve) => (child.process.exitCode !== null ? resolve() : child.process.once('exit', () => resolve())));
      await child.request('stop').catch(() => undefined);
      await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 5000))]);
      if (child.process.exitCode === null) child.process.kill();
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Driving

interface Target {
  label: string;
  child: Child;
  agent: http.Agent;
  latencies: number[];
  /** The question index of each latency (same order). */
  questionOf: number[];
  roundP50s: number[];
  wallMs: number;
  measuredTurns: number;
  cpuMicros: number;
  failures: number;
  maxRssBytes: number;
}

function post(target: Target, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent: target.agent,
        host: '127.0.0.1',
        port: target.child.port,
        method: 'POST',
        path: '/api/messages',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode ?? 0));
        response.once('error', reject);
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

/** The i-th request body of any round: the same sequence for both targets. */
function bodyFor(i: number, connectorUrl: string): string {
  const user = users[(i + Math.floor(i / questions.length)) % users.length]!;
  return JSON.stringify(messageActivity({ serviceUrl: connectorUrl, userId: user.id, userName: user.name, text: questions[i % questions.length]! }));
}

async function runRound(target: Target, count: number, connectorUrl: string): Promise<{ latencies: Float64Array; wallMs: number; failures: number }> {
  const latencies = new Float64Array(count);
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const body = bodyFor(i, connectorUrl);
      const started = performance.now();
      const status = await post(target, body).catch(() => -1);
      latencies[i] = performance.now() - started;
      if (status !== 200) failures++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { latencies, wallMs: performance.now() - started, failures };
}

const pause = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

async function main(): Promise<number> {
  console.log(`starting the fake connector, esafety-bot and the echo bot (child processes, node ${process.version}, ${os.cpus().length} cpus)…`);
  const connector = await startChild('connector', 'connector.ts');
  const connectorUrl = `http://127.0.0.1:${connector.port}`;
  // Started one after the other so neither start-up competes with the other.
  const esafetyChild = await startChild('esafety-bot', 'esafety.ts');
  const echoChild = await startChild('echo bot', 'echo.ts');

  const makeTarget = (label: string, child: Child): Target => ({
    label, child, agent: new http.Agent({ keepAlive: true, maxSockets: concurrency }),
    latencies: [], questionOf: [], roundP50s: [], wallMs: 0, measuredTurns: 0, cpuMicros: 0, failures: 0, maxRssBytes: 0,
  });
  const esafety = makeTarget('esafety-bot', esafetyChild);
  const echo = makeTarget('echo bot', echoChild);
  const targets = [esafety, echo];

  const connectorCounts = async () => (await connector.request('usage'))!.extra!;

  // Sanity: one turn each, and each must reach the connector without an apology.
  const sanity: string[] = [];
  for (const target of targets) {
    const before = await connectorCounts();
    const { failures } = await runRound(target, questions.length, connectorUrl);
    const after = await connectorCounts();
    const replies = after.calls! - before.calls!;
    const apologies = after.apologies! - before.apologies!;
    if (failures > 0 || replies < questions.length || apologies > 0) {
      sanity.push(`${target.label}: ${failures} non-200 answers, ${replies} replies to ${questions.length} turns, ${apologies} apologies`);
    }
  }
  if (sanity.length) {
    console.error(`the bots do not answer properly, not benchmarking:\n  ${sanity.join('\n  ')}`);
    return 1;
  }

  // Warm-up, alternating too (the JIT and the store's caches settle).
  const warmupRounds = 2;
  for (let round = 0; round < warmupRounds; round++) {
    for (const target of targets) await runRound(target, Math.ceil(warmup / warmupRounds), connectorUrl);
  }

  const profileDir = profile ? (stringArg(argv, 'profile-dir') ?? mkdtempSync(path.join(os.tmpdir(), 'esafety-bench-prof-'))) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  if (profile) for (const target of targets) await target.child.request('profile-start');

  console.log(`\nmeasuring: ${turns} turns per target in ${rounds} rounds each, alternating A/B, concurrency ${concurrency}, ${users.length} users, ${questions.length} ${flagArg(argv, 'with-reports') ? 'questions and reports' : 'questions (no reports: --with-reports adds them)'}; warm-up ${warmup} each${profile ? '; CPU profiler ON (slows both)' : ''}\n`);
  const perRound = (round: number) => Math.floor(turns / rounds) + (round < turns % rounds ? 1 : 0);
  const roundRows: string[][] = [];
  const pairedRatios: number[] = [];
  const before = await connectorCounts();
  const repliesBy = new Map<Target, number>([[esafety, 0], [echo, 0]]);
  for (let round = 0; round < rounds; round++) {
    const p50s: number[] = [];
    for (const target of targets) {
      await pause(100);
      const count = perRound(round);
      const usageBefore = (await target.child.request('usage'))!;
      const connectorBefore = await connectorCounts();
      const result = await runRound(target, count, connectorUrl);
      const usageAfter = (await target.child.request('usage'))!;
      const connectorAfter = await connectorCounts();
      repliesBy.set(target, repliesBy.get(target)! + connectorAfter.calls! - connectorBefore.calls!);
      const sorted = sortedCopy(result.latencies);
      const p50 = percentile(sorted, 50);
      p50s.push(p50);
      target.latencies.push(...result.latencies);
      for (let i = 0; i < count; i++) target.questionOf.push(i % questions.length);
      target.roundP50s.push(p50);
      target.wallMs += result.wallMs;
      target.measuredTurns += count;
      target.cpuMicros += usageAfter.cpuMicros - usageBefore.cpuMicros;
      target.failures += result.failures;
      target.maxRssBytes = Math.max(target.maxRssBytes, usageAfter.rssBytes);
      roundRows.push([`${round + 1}`, target.label, `${count}`, ms(p50), ms(percentile(sorted, 99)), ((1000 * count) / result.wallMs).toFixed(0), ms((usageAfter.cpuMicros - usageBefore.cpuMicros) / 1000 / count, 3)]);
    }
    pairedRatios.push(p50s[0]! / p50s[1]!);
  }
  const after = await connectorCounts();

  let profiles: Array<{ label: string; file: string }> = [];
  if (profileDir) {
    profiles = targets.map((target) => ({ label: target.label, file: path.join(profileDir, `${target.label.replace(/\W+/g, '-')}.cpuprofile`) }));
    for (const [i, target] of targets.entries()) await target.child.request('profile-stop', profiles[i]!.file);
  }

  console.log(table(['round', 'target', 'turns', 'p50_ms', 'p99_ms', 'turns/s', 'cpu_ms/turn'], roundRows));

  const summary = targets.map((target) => {
    const sorted = sortedCopy(target.latencies);
    return {
      target,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      mean: mean(sorted),
      perSecond: (1000 * target.measuredTurns) / target.wallMs,
      cpuPerTurn: target.cpuMicros / 1000 / target.measuredTurns,
      repliesPerTurn: repliesBy.get(target)! / target.measuredTurns,
    };
  });
  const [a, b] = summary as [(typeof summary)[0], (typeof summary)[0]];
  console.log('\nall measured turns, pooled:');
  console.log(
    table(
      ['target', 'turns', 'p50_ms', 'p90_ms', 'p99_ms', 'mean_ms', 'turns/s', 'cpu_ms/turn', 'replies/turn', 'max_rss_mb'],
      summary.map((s) => [s.target.label, `${s.target.measuredTurns}`, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.mean), s.perSecond.toFixed(0), ms(s.cpuPerTurn, 3), s.repliesPerTurn.toFixed(2), (s.target.maxRssBytes / 2 ** 20).toFixed(0)]),
    ),
  );
  const ratio = a.p50 / b.p50;
  // Per question: which turns cost the most over the echo bot (replies, search, store writes).
  const byQuestion = (target: Target) => questions.map((_, q) => percentile(sortedCopy(target.latencies.filter((_, i) => target.questionOf[i] === q)), 50));
  const esafetyByQuestion = byQuestion(esafety);
  const echoByQuestion = byQuestion(echo);
  console.log('\np50 by question (same bodies to both bots; the echo bot just echoes the text):');
  console.log(
    table(
      ['question', 'esafety_p50_ms', 'echo_p50_ms', 'ratio'],
      questions
        .map((question, q) => ({ question, a: esafetyByQuestion[q]!, b: echoByQuestion[q]! }))
        .sort((x, y) => y.a / y.b - x.a / x.b)
        .map(({ question, a: x, b: y }) => [question.length > 60 ? `${question.slice(0, 57)}...` : question, ms(x), ms(y), `${(x / y).toFixed(2)}x`]),
    ),
  );
  const sortedPaired = sortedCopy(pairedRatios);
  console.log(`\nratio of p50 (esafety-bot / echo bot): ${ratio.toFixed(2)}x pooled; per-round ratios median ${percentile(sortedPaired, 50).toFixed(2)}x (min ${sortedPaired[0]!.toFixed(2)}, max ${sortedPaired[sortedPaired.length - 1]!.toFixed(2)})`);
  console.log(`ratio of p99: ${(a.p99 / b.p99).toFixed(2)}x; throughput ratio (echo / esafety-bot): ${(b.perSecond / a.perSecond).toFixed(2)}x; CPU per turn: esafety-bot ${ms(a.cpuPerTurn, 3)} ms, echo ${ms(b.cpuPerTurn, 3)} ms (${(a.cpuPerTurn / b.cpuPerTurn).toFixed(2)}x)`);
  console.log(`target: p50 within ${TARGET_RATIO}x of the echo bot's p50 … ${ratio <= TARGET_RATIO ? 'MET' : 'MISSED'} (${ratio.toFixed(2)}x)`);

  const failures = a.target.failures + b.target.failures;
  const apologies = after.apologies! - before.apologies!;
  if (failures > 0 || apologies > 0 || after.notFound! > 0) console.log(`WARNING: ${failures} non-200 answers, ${apologies} apology replies, ${after.notFound} connector 404s during the run`);

  if (profiles.length) {
    console.log(`\nCPU profiles of the measured rounds (V8 sampling profiler, 0.5 ms): ${profileDir}`);
    const summaries = profiles.map(({ label, file }) => ({ label, summary: summarizeProfile(file, 20) }));
    for (const { label, summary } of summaries) console.log(`\n${formatSummary(label, summary)}`);
    console.log(`\n${compareAreas({ ...summaries[0]!, turns: a.target.measuredTurns }, { ...summaries[1]!, turns: b.target.measuredTurns }, 20)}`);
  }

  console.log(`\nturns: concurrency=${concurrency} turns=${turns} esafety_p50_ms=${ms(a.p50)} echo_p50_ms=${ms(b.p50)} ratio=${ratio.toFixed(2)}`);
  return failures > 0 || apologies > 0 ? 1 : 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error(error);
} finally {
  await stopChildren();
}
process.exit(exitCode);
