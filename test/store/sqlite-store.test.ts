import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countOperations } from '../../src/store/counting-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { expectAppError, storeContract } from './contract.ts';

const INCREMENTS = 500;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'esafety-sqlite-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

storeContract('SQLite file', async () => {
  const store = createSqliteStore({ file: join(dir, 'contract', 'nested', 'store.db') });
  return { store, cleanup: () => store.close() };
});

storeContract('SQLite :memory:', async () => {
  const store = createSqliteStore({ file: ':memory:' });
  return { store, cleanup: () => store.close() };
});

describe('SQLite store on a shared file', () => {
  it('creates the parent folder and uses WAL', async () => {
    const file = join(dir, 'created', 'deeper', 'store.db');
    const store = createSqliteStore({ file });
    await store.upsert({ school: 's', kind: 'k', id: '1' }, {});
    expect((await stat(file)).isFile()).toBe(true);
    expect((await stat(`${file}-wal`)).isFile()).toBe(true);
    await store.close();
  });

  it("a second instance sees the first's writes, and the etag race holds across instances", async () => {
    const file = join(dir, 'shared.db');
    const one = createSqliteStore({ file });
    const two = createSqliteStore({ file });
    try {
      const key = { school: 's', kind: 'k', id: 'race' };
      const created = await one.create(key, { n: 0 });
      expect(await two.get(key)).toEqual(created);
      await expectAppError(two.create(key, { n: 9 }), 'conflict');

      const results = await Promise.allSettled([one.replace(key, { n: 1 }, created.etag), two.replace(key, { n: 2 }, created.etag)]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(rejected?.reason).toMatchObject({ code: 'precondition_failed' });
      expect(await one.get(key)).toEqual(await two.get(key));

      // Many rounds, alternating which instance goes first: never two winners for one etag.
      let current = (await one.get(key))!;
      for (let round = 0; round < 50; round++) {
        const [a, b] = round % 2 ? [one, two] : [two, one];
        const settled = await Promise.allSettled([a.replace(key, { round }, current.etag), b.replace(key, { round }, current.etag)]);
        const winners = settled.filter((r) => r.status === 'fulfilled');
        expect(winners).toHaveLength(1);
        current = (winners[0] as PromiseFulfilledResult<typeof current>).value;
      }
      expect(await two.get(key)).toEqual(current);

      expect(await two.delete(key, current.etag)).toBe(true);
      expect(await one.get(key)).toBeUndefined();
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('two processes incrementing one counter with replace + etag lose no update', async () => {
    const file = join(dir, 'processes.db');
    const key = { school: 's', kind: 'counter', id: 'c' };
    const setup = createSqliteStore({ file });
    await setup.create(key, { n: 0 });
    // Each child: read, replace with the etag read, retry on precondition_failed; reports its retries.
    const script = `
      const { createSqliteStore } = await import(process.env.STORE_MODULE);
      const store = createSqliteStore({ file: process.env.STORE_FILE });
      const key = ${JSON.stringify(key)};
      let retries = 0;
      // Both children start looping at the same moment, so their writes really interleave.
      await new Promise((resolve) => setTimeout(resolve, Number(process.env.START_AT) - Date.now()));
      for (let i = 0; i < ${INCREMENTS}; i++) {
        for (;;) {
          const current = await store.get(key);
          try { await store.replace(key, { n: current.data.n + 1 }, current.etag); break; }
          catch (error) { if (error.code !== 'precondition_failed') throw error; retries++; }
        }
      }
      await store.close();
      console.log(retries);`;
    const env = {
      ...process.env,
      START_AT: String(Date.now() + 1500),
      STORE_FILE: file,
      STORE_MODULE: fileURLToPath(new URL('../../src/store/sqlite/sqlite-store.ts', import.meta.url)),
    };
    const args = ['--import', 'tsx', '--input-type=module', '-e', script];
    const run = () => promisify(execFile)(process.execPath, args, { env });
    const outputs = await Promise.all([run(), run()]);
    expect((await setup.get<{ n: number }>(key))?.data.n).toBe(2 * INCREMENTS);
    // Retries show the processes really interleaved (informational: the count varies from run to run).
    console.info(`cross-process retries: ${outputs.map((o) => o.stdout.trim()).join(', ')}`);
    await setup.close();
  }, 30_000);

  it('reports store_unavailable once closed', async () => {
    const store = createSqliteStore({ file: ':memory:' });
    await store.close();
    await expectAppError(store.ping(), 'store_unavailable');
    await expectAppError(store.get({ school: 's', kind: 'k', id: '1' }), 'store_unavailable');
    await store.close(); // idempotent
  });
});

describe('countOperations', () => {
  it('counts reads, writes and queries, including failed calls, and resets', async () => {
    const inner = createSqliteStore({ file: ':memory:' });
    const { store, counts, log, reset } = countOperations(inner);
    const key = { school: 'a', kind: 'k', id: '1' };
    const created = await store.create(key, { n: 1 });
    await store.get(key);
    await store.replace(key, { n: 2 }, created.etag);
    await expectAppError(store.replace(key, { n: 3 }, created.etag), 'precondition_failed');
    await store.upsert({ ...key, id: '2' }, {});
    await store.list('k', 'a');
    await store.delete(key);
    await store.ping();
    expect(counts()).toEqual({ reads: 1, writes: 5, queries: 1, total: 7 });
    expect(log().map((e) => e.op)).toEqual(['create', 'get', 'replace', 'replace', 'upsert', 'list', 'delete']);
    expect(log()[0]).toEqual({ op: 'create', kind: 'k', school: 'a' });
    reset();
    expect(counts()).toEqual({ reads: 0, writes: 0, queries: 0, total: 0 });
    expect(log()).toEqual([]);
    await store.close();
  });
});
