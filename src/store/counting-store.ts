/**
 * A Store decorator that counts and logs operations, so tests and docs can show what a bot turn
 * costs in store round trips (each one is a request unit bill on Cosmos DB). Calls are counted when
 * made, whether or not they succeed: a failed write still cost a round trip. ping and close are not counted.
 */
import type { RecordKey, Store } from './store.ts';

export type StoreOperation = 'get' | 'create' | 'replace' | 'upsert' | 'delete' | 'list';

export interface OperationCounts {
  reads: number;
  writes: number;
  queries: number;
  total: number;
}

export interface CountingStore {
  store: Store;
  counts(): OperationCounts;
  reset(): void;
  log(): Array<{ op: StoreOperation; kind: string; school: string }>;
}

export function countOperations(inner: Store): CountingStore {
  let entries: Array<{ op: StoreOperation; kind: string; school: string }> = [];
  const note = (op: StoreOperation, kind: string, school: string) => entries.push({ op, kind, school });
  const noteKey = (op: StoreOperation, key: RecordKey) => note(op, key.kind, key.school);

  const store: Store = {
    get(key) {
      noteKey('get', key);
      return inner.get(key);
    },
    create(key, data) {
      noteKey('create', key);
      return inner.create(key, data);
    },
    replace(key, data, etag) {
      noteKey('replace', key);
      return inner.replace(key, data, etag);
    },
    upsert(key, data) {
      noteKey('upsert', key);
      return inner.upsert(key, data);
    },
    delete(key, etag) {
      noteKey('delete', key);
      return inner.delete(key, etag);
    },
    list(kind, school, options) {
      note('list', kind, school);
      return inner.list(kind, school, options);
    },
    ping: () => inner.ping(),
    close: () => inner.close(),
  };

  return {
    store,
    counts() {
      const count = (...ops: StoreOperation[]) => entries.filter((e) => ops.includes(e.op)).length;
      const reads = count('get');
      const writes = count('create', 'replace', 'upsert', 'delete');
      const queries = count('list');
      return { reads, writes, queries, total: reads + writes + queries };
    },
    reset() {
      entries = [];
    },
    log: () => entries.map((e) => ({ ...e })),
  };
}
