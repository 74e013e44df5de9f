/**
 * The one storage interface. Every record lives in a school's partition (`school`), has a `kind`
 * (what sort of record it is) and an `id` unique within that kind and school, and carries an
 * opaque `etag` that changes on every write. Writes that two server instances may race on use
 * `replace` with the etag they read (optimistic concurrency): a stale etag fails with
 * AppError('precondition_failed') and nothing is written.
 *
 * Two implementations honour the same contract (test/store/contract.ts): SQLite (embedded default)
 * and Azure Cosmos DB (production). Records of one school are never read by a call naming another.
 */
export interface StoredRecord<T> {
  kind: string;
  school: string;
  id: string;
  etag: string;
  /** ISO timestamp of the last write, set by the store. */
  updatedAt: string;
  data: T;
}

export interface ListOptions {
  /** Only ids starting with this prefix. */
  idPrefix?: string;
  /** At most this many records (ordered by id ascending). */
  limit?: number;
}

/** Keys every record: the school's partition, the kind of record and its id. */
export interface RecordKey {
  kind: string;
  school: string;
  id: string;
}

export interface Store {
  /** Point read. Undefined when there is no such record. */
  get<T>(key: RecordKey): Promise<StoredRecord<T> | undefined>;
  /** Creates the record; AppError('conflict') when it exists already. */
  create<T>(key: RecordKey, data: T): Promise<StoredRecord<T>>;
  /** Replaces the record only if its etag is still `etag`; AppError('precondition_failed') otherwise, AppError('not_found') when it is gone. */
  replace<T>(key: RecordKey, data: T, etag: string): Promise<StoredRecord<T>>;
  /** Creates or overwrites, unconditionally. For records only one writer touches. */
  upsert<T>(key: RecordKey, data: T): Promise<StoredRecord<T>>;
  /** Deletes; with an etag, only if it still matches (precondition_failed otherwise). False when there was nothing to delete. */
  delete(key: RecordKey, etag?: string): Promise<boolean>;
  /** Records of one kind in one school, by id ascending. A query inside one partition: never on a hot path. */
  list<T>(kind: string, school: string, options?: ListOptions): Promise<StoredRecord<T>[]>;
  /** Throws AppError('store_unavailable') with the reason when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Records that belong to no school (the school registry and platform mappings) live in this partition. */
export const GLOBAL_PARTITION = '_global';
