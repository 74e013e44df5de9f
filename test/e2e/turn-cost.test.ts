/**
 * Issue 2, "Must have" 6: what a turn costs in store operations. A question turn makes at most three
 * store calls, all point reads or writes in the school's partition, and no query: in the steady
 * state, and in the worst case too, when every cache (user, school, tenant mapping, policy set) has
 * expired on the same turn. Schools, tenant mappings and policy sets are refreshed in the background
 * (off the turn); the user, whose roles are security data, is read on the turn once its cache entry
 * is ROLE_CACHE_SECONDS old, so a role revoked on another instance stops working within that time.
 *
 * Time is an injected clock advanced by the test, so "61 minutes later" takes no time at all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Directory } from '../../src/bot/directory.ts';
import { loadSettings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { createApp, type App } from '../../src/main.ts';
import { PolicyLibrary } from '../../src/policies/library.ts';
import { Roster } from '../../src/bot/roster.ts';
import { loadPolicyDirectory } from '../../src/policies/load.ts';
import { Refresher } from '../../src/refresher.ts';
import { countOperations, type CountingStore } from '../../src/store/counting-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { GLOBAL_PARTITION, type Store } from '../../src/store/store.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { repoRoot } from '../helpers/app.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const SCHOOL = 'cost-school';
const TENANT = 'tenant-cost';

interface Instance {
  app: App;
  url: string;
  counted: CountingStore;
  dataDir: string;
  /** The clock every cache of this instance reads. */
  advance(milliseconds: number): void;
}

/** The real app (restify, CloudAdapter, SQLite) on loopback, with a counting store and a clock the test controls. */
async function startInstance(env: Record<string, string>, dataDir: string): Promise<Instance> {
  let clock = Date.now();
  const counted = countOperations(createSqliteStore({ file: path.join(dataDir, 'esafety.sqlite') }));
  const settings = loadSettings({
    PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dataDir,
    POLICIES_DIR: path.join(repoRoot, 'policies'), RATE_LIMIT_PER_MINUTE: '0', ...env,
  });
  // The outbox and the job runner poll the store on their own timers (src/delivery): not part of any
  // turn, so they are told to wait a day, and what is counted between reset() and the reply is the turn.
  const day = 24 * 60 * MINUTE;
  const app = await createApp(settings, silentLogger(), { store: counted.store, now: () => clock, delivery: { outbox: { idlePollMs: day }, jobs: { pollMs: day } } });
  const port = await app.listen();
  return { app, url: `http://127.0.0.1:${port}`, counted, dataDir, advance: (ms) => (clock += ms) };
}

/** Another server instance (or the command line) on the same file: its own store and caches. */
function otherInstanceOn(dataDir: string): { store: Store; directory: Directory; library: PolicyLibrary } {
  const store = createSqliteStore({ file: path.join(dataDir, 'esafety.sqlite') });
  return { store, directory: new Directory(store, { cacheSeconds: 1 }), library: new PolicyLibrary(store) };
}

let connector: FakeConnector;
beforeAll(async () => {
  connector = await startFakeConnector();
});
afterAll(async () => {
  await connector.close();
});

async function say(instance: Instance, text: string, userId: string, options: { userName?: string; tenantId?: string } = {}): Promise<string> {
  const before = connector.activities.length;
  const body = messageActivity({ serviceUrl: connector.url, text, userId, userName: options.userName ?? 'Test Teacher', tenantId: options.tenantId });
  const response = await fetch(`${instance.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  // CloudAdapter answers the POST after the turn (and its replies) finished: every store call of the turn is counted by now.
  const [reply] = (await connector.waitFor(before + 1)).slice(before);
  return reply!.activity.text ?? cardText(cardOf(reply!.activity));
}

/** The store calls of one question turn, as "op kind school" lines. */
async function questionCost(instance: Instance, text: string, userId: string, tenantId?: string): Promise<{ reply: string; ops: string[] }> {
  instance.counted.reset();
  const reply = await say(instance, text, userId, { tenantId });
  return { reply, ops: instance.counted.log().map((entry) => `${entry.op} ${entry.kind} ${entry.school}`) };
}

/** The bound every question turn must keep: at most three point operations in the school's partition, no query. */
function expectWithinBound(ops: string[], school: string): void {
  expect(ops.length, ops.join('\n')).toBeLessThanOrEqual(3);
  for (const op of ops) {
    expect(op, 'no query on a question turn').not.toMatch(/^list /);
    expect(op.endsWith(` ${school}`), `${op}: only the school's own partition`).toBe(true);
  }
}

describe('what a question turn costs', () => {
  let instance: Instance;
  let other: ReturnType<typeof otherInstanceOn>;
  beforeAll(async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-turn-cost-'));
    // The longest role cache there is (60 s): the worst case for revocation.
    instance = await startInstance({ ROLE_CACHE_SECONDS: '60' }, dataDir);
    other = otherInstanceOn(dataDir);
    // A Teams school registered and given its policies elsewhere (the command line, another instance),
    // so this instance meets it cold.
    await other.directory.upsertSchool({ id: SCHOOL, name: 'Cost Academy', teamsTenant: TENANT });
    await other.library.import(SCHOOL, (await loadPolicyDirectory(path.join(repoRoot, 'policies'))).documents, 'test');
    // The refreshers run on real timers; here each pass is run by the test, between turns, so that
    // what is counted is the turn alone. (A pass never runs inside a turn: it has its own timer.)
    instance.app.directory.startRefresh({ intervalMs: 24 * 60 * MINUTE });
    instance.app.library.startRefresh({ intervalMs: 24 * 60 * MINUTE });
  });
  afterAll(async () => {
    await other.store.close();
    await instance.app.close();
    await rm(instance.dataDir, { recursive: true, force: true });
  });

  it('the first question a process sees for a school reads what it caches, once', async () => {
    const { reply, ops } = await questionCost(instance, 'can pupils use phones in class?', 'steady', TENANT);
    expect(reply).toMatch(/version/);
    // Cold: the tenant mapping and the school (in _global), the user (met for the first time, so
    // written), the conversation, the policy set and each current policy version, the question.
    expect(ops).toContain(`get tenant ${GLOBAL_PARTITION}`);
    expect(ops).toContain(`get school ${GLOBAL_PARTITION}`);
    expect(ops).toContain(`get policy-set ${SCHOOL}`);
    expect(ops).toContain(`create user ${SCHOOL}`);
    expect(ops.filter((op) => op.startsWith('list '))).toEqual([]);
  });

  it('a steady-state question costs a conversation read and a question write', async () => {
    for (const question of ['what is the rule on staff using personal phones?', 'can pupils use phones in class?', 'how long must my password be?']) {
      const { reply, ops } = await questionCost(instance, question, 'steady', TENANT);
      expect(reply).not.toMatch(/went wrong/);
      expect(ops).toEqual([`get conversation ${SCHOOL}`, `create question ${SCHOOL}`]);
    }
  });

  it('worst case: with every cache expired on the same turn, a question still costs at most three point operations', async () => {
    // Past every time limit at once: the role cache (60 s), the old 30 s policy recheck, and then some.
    instance.advance(61 * MINUTE);
    const { reply, ops } = await questionCost(instance, 'can pupils use phones in class?', 'steady', TENANT);
    expect(reply).toMatch(/version/);
    expectWithinBound(ops, SCHOOL);
    // Exactly: the user (its roles, read again because its cache entry expired), the conversation, the question.
    expect([...ops].sort()).toEqual([`create question ${SCHOOL}`, `get conversation ${SCHOOL}`, `get user ${SCHOOL}`]);
  });

  it('schools, tenant mappings and policy sets are re-read by the refresher, off the turn', async () => {
    instance.counted.reset();
    await Promise.all([instance.app.directory.refresh(), instance.app.library.refresh()]);
    const background = instance.counted.log().map((entry) => `${entry.op} ${entry.kind} ${entry.school}`);
    // One point read per cached record, and nothing else while the policy set is unchanged: this
    // school, its tenant mapping and its policy set, and the default school (read at start-up).
    expect([...background].sort()).toEqual([`get policy-set ${SCHOOL}`, `get school ${GLOBAL_PARTITION}`, `get school ${GLOBAL_PARTITION}`, `get tenant ${GLOBAL_PARTITION}`]);
  });

  it('a policy change made on another instance reaches this one by the next refresh pass, and the questions still cost at most three', async () => {
    const question = 'when is the staff christmas party this year?';
    expect(await say(instance, question, 'steady', { tenantId: TENANT })).toMatch(/don't cover that/);
    await other.library.saveAnswer(SCHOOL, { id: 'esc-party', question: 'when is the staff christmas party', answer: 'The staff christmas party is on Friday 18 December in the school hall.', answeredBy: 'coord', answeredAt: '2026-11-20T10:00:00.000Z' });

    // Until the refresher's next pass, this instance answers from the index it has: no read on the turn.
    const before = await questionCost(instance, question, 'steady', TENANT);
    expect(before.reply).toMatch(/don't cover that/);
    expectWithinBound(before.ops, SCHOOL);

    // The pass (at most 30 s later) reads the new set and the versions, and rebuilds the index off the turn.
    instance.advance(30 * SECOND);
    await instance.app.library.refresh();
    instance.advance(61 * MINUTE); // and every cache expired again
    const after = await questionCost(instance, question, 'steady', TENANT);
    expect(after.reply).toMatch(/The coordinator has answered this before/);
    expect(after.reply).toMatch(/Friday 18 December/);
    expectWithinBound(after.ops, SCHOOL);
  });

  it('a question in a team\'s channel costs the same; a team this process has not met yet costs one read, after the answer, once', async () => {
    const team = '19:cost-staff@thread.tacv2';
    // The team is followed already: its install event was handled by another instance.
    const otherRoster = new Roster({ directory: other.directory, store: other.store, log: silentLogger() });
    await otherRoster.noteSource(SCHOOL, { platform: 'teams', teamId: team, access: { serviceUrl: connector.url, tenantId: TENANT, botId: '28:bot' } });
    const channelQuestion = async (text: string) => {
      instance.counted.reset();
      const before = connector.activities.length;
      const body = {
        ...messageActivity({ serviceUrl: connector.url, text, userId: 'steady', tenantId: TENANT, conversationType: 'channel', conversationId: `${team};messageid=1` }),
        channelData: { tenant: { id: TENANT }, team: { id: team }, channel: { id: team } },
      };
      const response = await fetch(`${instance.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(response.status).toBe(200);
      const [reply] = (await connector.waitFor(before + 1)).slice(before);
      return { reply: cardText(cardOf(reply!.activity)), ops: instance.counted.log().map((entry) => `${entry.op} ${entry.kind} ${entry.school}`) };
    };
    const first = await channelQuestion('can pupils use phones in class?');
    expect(first.reply).toMatch(/version/);
    // The turn within its bound, then (after the answer was sent) the one read that finds the team followed.
    expect(first.ops.at(-1)).toBe(`get roster-source ${SCHOOL}`);
    expectWithinBound(first.ops.slice(0, -1), SCHOOL);
    for (const question of ['how long must my password be?', 'can pupils use phones in class?']) {
      const { reply, ops } = await channelQuestion(question);
      expect(reply).toMatch(/version/);
      expect(ops).toEqual([`get conversation ${SCHOOL}`, `create question ${SCHOOL}`]);
    }
  });

  it('a role revoked on another instance keeps working for at most ROLE_CACHE_SECONDS (here the maximum, 60 s)', async () => {
    await other.directory.grantRole(SCHOOL, 'coord', 'coordinator');
    expect(await say(instance, 'roles list', 'coord', { tenantId: TENANT })).toMatch(/Roles in this school/);
    await other.directory.revokeRole(SCHOOL, 'coord', 'coordinator');
    // Inside the window the cached role may still work (and here does: the cache is real)…
    instance.advance(59 * SECOND);
    expect(await say(instance, 'roles list', 'coord', { tenantId: TENANT })).toMatch(/Roles in this school/);
    // …and once the role cache's 60 s are up, it does not, even though schools and tenant mappings stay cached.
    instance.advance(1 * SECOND);
    instance.counted.reset();
    expect(await say(instance, 'roles list', 'coord', { tenantId: TENANT })).toMatch(/Only the e-safety coordinator can do that/);
    expect(instance.counted.log().filter((entry) => entry.kind === 'user').map((entry) => entry.op)).toEqual(['get']);
  });
});

describe('the default school (no tenant), with a short role cache', () => {
  let instance: Instance;
  let other: ReturnType<typeof otherInstanceOn>;
  beforeAll(async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-turn-cost-'));
    instance = await startInstance({ ROLE_CACHE_SECONDS: '1' }, dataDir);
    other = otherInstanceOn(dataDir);
  });
  afterAll(async () => {
    await other.store.close();
    await instance.app.close();
    await rm(instance.dataDir, { recursive: true, force: true });
  });

  it('every question after the first costs at most three point operations, whichever caches expired', async () => {
    expect(await say(instance, 'can pupils use phones in class?', 'steady')).toMatch(/version/);
    for (const [question, elapsed] of [['what is the rule on staff using personal phones?', 0], ['can pupils use phones in class?', 1 * SECOND], ['how long must my password be?', 31 * SECOND], ['guest wifi?', 10 * MINUTE]] as const) {
      instance.advance(elapsed);
      const { reply, ops } = await questionCost(instance, question, 'steady');
      expect(reply).not.toMatch(/went wrong/);
      expectWithinBound(ops, 'default');
      expect(ops.filter((op) => op.includes(' user ')), 'the user record is not rewritten on a steady-state turn').not.toContain('replace user default');
    }
  });

  it('a role revoked on another instance stops working within ROLE_CACHE_SECONDS', async () => {
    await other.directory.grantRole('default', 'coord', 'coordinator');
    expect(await say(instance, 'roles list', 'coord')).toMatch(/Roles in this school/);
    await other.directory.revokeRole('default', 'coord', 'coordinator');
    instance.advance(1 * SECOND);
    expect(await say(instance, 'roles list', 'coord')).toMatch(/Only the e-safety coordinator can do that/);
  });

  it('a stale cached user record does not fail the turn when the user record must be written', async () => {
    await other.directory.grantRole('default', 'renamed', 'coordinator');
    expect(await say(instance, 'whoami', 'renamed', { userName: 'First Name' })).toMatch(/Roles: staff, coordinator/);
    // Another instance changes the record; this instance still holds the old one (and its etag) in its cache.
    await other.directory.grantRole('default', 'renamed', 'dsl');
    // A new display name makes this instance write the user record: from a stale etag, at first.
    const reply = await say(instance, 'whoami', 'renamed', { userName: 'Second Name' });
    expect(reply).not.toMatch(/went wrong/);
    expect(reply).toMatch(/Roles: staff, coordinator, dsl/);
    expect((await other.store.get<{ name: string; roles: string[] }>({ kind: 'user', school: 'default', id: 'renamed' }))?.data).toMatchObject({ name: 'Second Name', roles: ['coordinator', 'dsl'] });
  });
});

describe('the background refresher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs one pass per interval on an unref\'d timer, never two at once, and stop() waits for a pass in progress', async () => {
    vi.useFakeTimers();
    let passes = 0;
    let inFlight = 0;
    let finishPass: (() => void) | undefined;
    const refresher = new Refresher(async () => {
      passes++;
      inFlight++;
      expect(inFlight).toBe(1);
      await new Promise<void>((resolve) => (finishPass = resolve));
      inFlight--;
    }, 1000);
    const timers = vi.getTimerCount();
    expect(timers).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(passes).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(passes).toBe(1);
    // A slow pass: no second one starts while it runs.
    await vi.advanceTimersByTimeAsync(5000);
    expect(passes).toBe(1);
    finishPass!();
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toBe(2);
    let stopped = false;
    const stopping = refresher.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finishPass!();
    await stopping;
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(passes).toBe(2);
  });

  it('does not keep the process alive (its timer is unref\'d)', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const refresher = new Refresher(async () => undefined, 60_000);
      const timer = spy.mock.results.at(-1)!.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      await refresher.stop();
    } finally {
      spy.mockRestore();
    }
  });
});
