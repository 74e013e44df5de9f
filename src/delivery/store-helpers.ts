/** Read-modify-write helpers over the Store's optimistic concurrency (etags). */
import { isAppError } from '../errors.ts';
import type { RecordKey, Store, StoredRecord } from '../store/store.ts';

/** The losing side of a race: someone else wrote first (or the record went away). */
export function isRace(error: unknown): boolean {
  return isAppError(error, 'precondition_failed') || isAppError(error, 'conflict') || isAppError(error, 'not_found');
}

/**
 * Reads the record, asks `change` for its new data (undefined: leave it as it is) and writes it
 * with the etag read (create when it does not exist), again from the read when another writer won.
 */
export async function mutate<T>(
  store: Store,
  key: RecordKey,
  change: (current: T | undefined) => T | undefined,
  attempts = 10,
): Promise<StoredRecord<T> | undefined> {
  for (let attempt = 1; ; attempt++) {
    const current = await store.get<T>(key);
    const next = change(current?.data);
    if (next === undefined) return current;
    try {
      return current ? await store.replace(key, next, current.etag) : await store.create(key, next);
    } catch (error) {
      if (attempt >= attempts || !isRace(error)) throw error;
    }
  }
}

/** Creates the record; false when it exists already (another writer, or an earlier attempt). */
export async function createIfAbsent<T>(store: Store, key: RecordKey, data: T): Promise<boolean> {
  try {
    await store.create(key, data);
    return true;
  } catch (error) {
    if (isAppError(error, 'conflict')) return false;
    throw error;
  }
}

/** Replaces with the etag; undefined when another writer got there first (or the record is gone). */
export async function replaceIfUnchanged<T>(store: Store, record: StoredRecord<T>, data: T): Promise<StoredRecord<T> | undefined> {
  try {
    return await store.replace(record, data, record.etag);
  } catch (error) {
    if (isRace(error)) return undefined;
    throw error;
  }
}
