/**
 * The Store contract, run against every implementation (SQLite, Cosmos DB). Each test writes under its
 * own fresh school, so tests never see each other's records even though they share one store.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, type ErrorCode } from '../../src/errors.ts';
import type { RecordKey, Store } from '../../src/store/store.ts';

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
}

/** Asserts that `promise` rejects with an AppError of `code`. */
export async function expectAppError(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected AppError('${code}')`).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe(code);
  return error as AppError;
}

export function storeContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    let subject: StoreUnderTest;
    let store: Store;
    beforeAll(async () => {
      subject = await makeStore();
      store = subject.store;
    });
    afterAll(async () => {
      await subject?.cleanup();
    });

    const newSchool = () => `school-${randomUUID()}`;
    const keyIn = (school: string, id = 'r1', kind = 'note'): RecordKey => ({ school, kind, id });

    it('get of a missing record is undefined', async () => {
      expect(await store.get(keyIn(newSchool()))).toBeUndefined();
    });

    it('create then get round-trips nested JSON and unicode', async () => {
      const key = keyIn(newSchool());
      const data = {
        title: 'Políticas de uso — 安全 😀',
        nested: { list: [1, 2.5, null, true, 'x'], deep: { empty: {}, none: [] } },
        quote: 'say "hi"\n\\ tab\t',
      };
      const created = await store.create(key, data);
      expect(created).toMatchObject({ ...key, data });
      expect(created.etag).toBeTruthy();
      expect(new Date(created.updatedAt).toISOString()).toBe(created.updatedAt);
      const read = await store.get<typeof data>(key);
      expect(read).toEqual(created);
    });

    it('scalar and array data round-trip with their JSON types', async () => {
      const school = newSchool();
      const values: unknown[] = [42, '42', 1.5, 0, '', 'text', true, null, [1, '2', { three: 3 }], 12345678901234567000];
      for (const [i, value] of values.entries()) {
        await store.upsert(keyIn(school, `v${i}`), value);
        expect((await store.get(keyIn(school, `v${i}`)))?.data).toStrictEqual(value);
      }
    });

    it('create of an existing record is a conflict and leaves it unchanged', async () => {
      const key = keyIn(newSchool());
      const first = await store.create(key, { n: 1 });
      await expectAppError(store.create(key, { n: 2 }), 'conflict');
      expect(await store.get(key)).toEqual(first);
    });

    it('replace with the current etag writes and changes the etag', async () => {
      const key = keyIn(newSchool());
      const first = await store.create(key, { n: 1 });
      const second = await store.replace(key, { n: 2 }, first.etag);
      expect(second.data).toEqual({ n: 2 });
      expect(second.etag).not.toBe(first.etag);
      expect(await store.get(key)).toEqual(second);
    });

    it('replace with a stale etag is precondition_failed and writes nothing', async () => {
      const key = keyIn(newSchool());
      const first = await store.create(key, { n: 1 });
      const second = await store.replace(key, { n: 2 }, first.etag);
      await expectAppError(store.replace(key, { n: 3 }, first.etag), 'precondition_failed');
      expect(await store.get(key)).toEqual(second);
    });

    it('replace of a missing record is not_found', async () => {
      await expectAppError(store.replace(keyIn(newSchool()), { n: 1 }, 'any-etag'), 'not_found');
    });

    it('upsert creates, then overwrites with a new etag', async () => {
      const key = keyIn(newSchool());
      const created = await store.upsert(key, { n: 1 });
      expect(await store.get(key)).toEqual(created);
      const overwritten = await store.upsert(key, { n: 2 });
      expect(overwritten.data).toEqual({ n: 2 });
      expect(overwritten.etag).not.toBe(created.etag);
      expect(await store.get(key)).toEqual(overwritten);
    });

    it('delete without an etag removes the record; a second delete returns false', async () => {
      const key = keyIn(newSchool());
      await store.create(key, { n: 1 });
      expect(await store.delete(key)).toBe(true);
      expect(await store.get(key)).toBeUndefined();
      expect(await store.delete(key)).toBe(false);
      expect(await store.delete(key, 'any-etag')).toBe(false);
    });

    it('delete with the current etag works; a stale etag is refused', async () => {
      const key = keyIn(newSchool());
      const first = await store.create(key, { n: 1 });
      const second = await store.replace(key, { n: 2 }, first.etag);
      await expectAppError(store.delete(key, first.etag), 'precondition_failed');
      expect(await store.get(key)).toEqual(second);
      expect(await store.delete(key, second.etag)).toBe(true);
      expect(await store.get(key)).toBeUndefined();
    });

    it('list returns one kind in one school, ordered by id, with idPrefix and limit', async () => {
      const school = newSchool();
      for (const id of ['c', 'a/2', 'b', 'a/1', 'a/10', 'ab']) await store.create(keyIn(school, id), { id });
      await store.create(keyIn(school, 'a/3', 'other-kind'), {});
      await store.create(keyIn(newSchool(), 'a/4'), {});

      const all = await store.list<{ id: string }>('note', school);
      expect(all.map((r) => r.id)).toEqual(['a/1', 'a/10', 'a/2', 'ab', 'b', 'c']);
      expect(all.every((r) => r.kind === 'note' && r.school === school && r.data.id === r.id)).toBe(true);
      expect(all[0]).toEqual(await store.get(keyIn(school, 'a/1')));

      expect((await store.list('note', school, { idPrefix: 'a/' })).map((r) => r.id)).toEqual(['a/1', 'a/10', 'a/2']);
      expect((await store.list('note', school, { idPrefix: 'a/1' })).map((r) => r.id)).toEqual(['a/1', 'a/10']);
      expect((await store.list('note', school, { limit: 2 })).map((r) => r.id)).toEqual(['a/1', 'a/10']);
      expect((await store.list('note', school, { idPrefix: 'a', limit: 4 })).map((r) => r.id)).toEqual([
        'a/1',
        'a/10',
        'a/2',
        'ab',
      ]);
      expect(await store.list('note', school, { idPrefix: 'zzz' })).toEqual([]);
      expect(await store.list('note', school, { limit: 0 })).toEqual([]);
      expect(await store.list('missing-kind', school)).toEqual([]);
      await expectAppError(store.list('note', school, { limit: -1 }), 'bad_request');
    });

    it('ids and kinds with /, #, ?, \\, %, ~, spaces and unicode round-trip and stay distinct', async () => {
      const school = newSchool();
      const ids = ['a/b', 'a#b', 'a?b', 'a\\b', '100%', '%2F', 'a~b', ' spaced id ', 'élève 😀', 'a%2Fb', '..', 'x'.repeat(300)];
      for (const id of ids) await store.create(keyIn(school, id), { id });
      for (const id of ids) expect((await store.get<{ id: string }>(keyIn(school, id)))?.data.id).toBe(id);
      const listed = await store.list<{ id: string }>('note', school);
      expect(listed.map((r) => r.id).sort()).toEqual([...ids].sort());

      // Kind and id must not be confusable through the encoding.
      await store.create({ school, kind: 'k~1', id: 'x' }, { which: 1 });
      await store.create({ school, kind: 'k', id: '1~x' }, { which: 2 });
      await store.create({ school, kind: 'k/1', id: 'x' }, { which: 3 });
      expect((await store.get({ school, kind: 'k~1', id: 'x' }))?.data).toEqual({ which: 1 });
      expect((await store.get({ school, kind: 'k', id: '1~x' }))?.data).toEqual({ which: 2 });
      expect((await store.get({ school, kind: 'k/1', id: 'x' }))?.data).toEqual({ which: 3 });
    });

    it('schools are isolated: the same kind and id in another school is never seen', async () => {
      const schoolA = newSchool();
      const schoolB = newSchool();
      const keyA = keyIn(schoolA, 'shared');
      const keyB = keyIn(schoolB, 'shared');
      const a = await store.create(keyA, { owner: 'A' });
      await store.create(keyIn(schoolA, 'only-a'), { owner: 'A' });

      expect(await store.get(keyB)).toBeUndefined();
      expect(await store.list('note', schoolB)).toEqual([]);
      expect(await store.list('note', schoolB, { idPrefix: 'shared' })).toEqual([]);
      await expectAppError(store.replace(keyB, { owner: 'B' }, a.etag), 'not_found');
      expect(await store.delete(keyB)).toBe(false);

      // Same kind and id written in B: both exist side by side.
      await store.create(keyB, { owner: 'B' });
      expect((await store.get(keyA))?.data).toEqual({ owner: 'A' });
      expect((await store.get(keyB))?.data).toEqual({ owner: 'B' });
      expect((await store.list('note', schoolB)).map((r) => [r.school, r.id])).toEqual([[schoolB, 'shared']]);
      expect((await store.list('note', schoolA)).map((r) => r.school)).toEqual([schoolA, schoolA]);
      expect(await store.delete(keyB)).toBe(true);
      expect(await store.get(keyA)).toEqual(a);
    });

    it('two concurrent replaces with the same etag: exactly one succeeds', async () => {
      const key = keyIn(newSchool());
      const first = await store.create(key, { n: 0 });
      const results = await Promise.allSettled([
        store.replace(key, { n: 1 }, first.etag),
        store.replace(key, { n: 2 }, first.etag),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0].reason).toBeInstanceOf(AppError);
      expect((lost[0].reason as AppError).code).toBe('precondition_failed');
      const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<Store['replace']>>>).value;
      expect(await store.get(key)).toEqual(winner);
    });

    it('ping resolves', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
