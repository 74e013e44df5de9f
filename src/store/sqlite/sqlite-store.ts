/**
 * The embedded Store: one SQLite file (or ':memory:'), one table. Safe for several Store instances
 * (or processes) on the same file: every conditional write is a single SQL statement whose WHERE
 * clause carries the condition, so the check and the write are one atomic step under SQLite's
 * write lock, and no state is cached between calls.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AppError, asAppError } from '../../errors.ts';
import type { ListOptions, RecordKey, Store, StoredRecord } from '../store.ts';

interface Row {
  school: string;
  kind: string;
  id: string;
  etag: string;
  updated_at: string;
  data: string;
}

const COLUMNS = 'school, kind, id, etag, updated_at, data';

export function createSqliteStore(options: { file: string }): Store {
  const { file } = options;
  const inMemory = file === ':memory:' || file === '';
  let db: Database.Database;
  try {
    if (!inMemory) mkdirSync(dirname(file), { recursive: true });
    db = new Database(file);
    // Another connection holding the write lock makes us wait (up to 5 s) instead of failing at once.
    // Set first: switching to WAL itself needs a lock that a second process opening the file may hold.
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // data holds JSON text. It is declared TEXT, not JSON: a column typed JSON gets NUMERIC affinity,
    // and SQLite would then store the JSON text '42' as the integer 42.
    db.exec(`CREATE TABLE IF NOT EXISTS records (
      school TEXT NOT NULL,
      kind TEXT NOT NULL,
      id TEXT NOT NULL,
      etag TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (school, kind, id)
    ) WITHOUT ROWID`);
  } catch (error) {
    throw unavailable(file, error);
  }

  const key = 'school = @school AND kind = @kind AND id = @id';
  const stmt = {
    get: db.prepare<RecordKey, Row>(`SELECT ${COLUMNS} FROM records WHERE ${key}`),
    exists: db.prepare<RecordKey, { one: number }>(`SELECT 1 AS one FROM records WHERE ${key}`),
    insert: db.prepare(
      `INSERT INTO records (${COLUMNS}) VALUES (@school, @kind, @id, @etag, @updated_at, @data)`,
    ),
    update: db.prepare(
      `UPDATE records SET etag = @etag, updated_at = @updated_at, data = @data WHERE ${key} AND etag = @expected`,
    ),
    upsert: db.prepare(
      `INSERT INTO records (${COLUMNS}) VALUES (@school, @kind, @id, @etag, @updated_at, @data)
       ON CONFLICT (school, kind, id) DO UPDATE SET etag = excluded.etag, updated_at = excluded.updated_at, data = excluded.data`,
    ),
    delete: db.prepare(`DELETE FROM records WHERE ${key}`),
    deleteIfMatch: db.prepare(`DELETE FROM records WHERE ${key} AND etag = @expected`),
    // `id >= @prefix` lets the primary key index start the scan; substr() makes the prefix test exact
    // (LIKE would be case-insensitive and treat % and _ as wildcards).
    list: db.prepare<{ school: string; kind: string; prefix: string; limit: number }, Row>(
      `SELECT ${COLUMNS} FROM records
       WHERE school = @school AND kind = @kind AND id >= @prefix AND substr(id, 1, length(@prefix)) = @prefix
       ORDER BY id LIMIT @limit`,
    ),
    ping: db.prepare('SELECT 1'),
  };

  /** Runs a synchronous statement; a SQLite failure (busy past the timeout, I/O, closed database) means the store is unavailable. */
  function run<T>(action: () => T): T {
    try {
      return action();
    } catch (error) {
      if (error instanceof Database.SqliteError || !db.open) throw unavailable(file, error);
      throw asAppError(error);
    }
  }

  function newRow(k: RecordKey, data: unknown): Row {
    return {
      school: k.school,
      kind: k.kind,
      id: k.id,
      etag: randomUUID(),
      updated_at: new Date().toISOString(),
      data: JSON.stringify(data ?? null),
    };
  }

  return {
    async get<T>(k: RecordKey) {
      const row = run(() => stmt.get.get(keyParams(k)));
      return row ? toRecord<T>(row) : undefined;
    },

    async create<T>(k: RecordKey, data: T) {
      const row = newRow(k, data);
      run(() => {
        try {
          stmt.insert.run(row);
        } catch (error) {
          // The primary key detects the duplicate, also against another connection's concurrent insert.
          if (isSqliteError(error, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw conflict(k);
          throw error;
        }
      });
      return toRecord<T>(row);
    },

    async replace<T>(k: RecordKey, data: T, etag: string) {
      const row = newRow(k, data);
      const { changes } = run(() => stmt.update.run({ ...row, expected: etag }));
      if (changes === 0) {
        const exists = run(() => stmt.exists.get(keyParams(k)));
        if (!exists) throw new AppError('not_found', `No ${describe(k)}`);
        throw new AppError('precondition_failed', `${describe(k)} was changed by another writer`);
      }
      return toRecord<T>(row);
    },

    async upsert<T>(k: RecordKey, data: T) {
      const row = newRow(k, data);
      run(() => stmt.upsert.run(row));
      return toRecord<T>(row);
    },

    async delete(k: RecordKey, etag?: string) {
      if (etag === undefined) return run(() => stmt.delete.run(keyParams(k))).changes > 0;
      const { changes } = run(() => stmt.deleteIfMatch.run({ ...keyParams(k), expected: etag }));
      if (changes > 0) return true;
      if (!run(() => stmt.exists.get(keyParams(k)))) return false;
      throw new AppError('precondition_failed', `${describe(k)} was changed by another writer`);
    },

    async list<T>(kind: string, school: string, options: ListOptions = {}) {
      const limit = checkLimit(options.limit) ?? -1; // LIMIT -1: no limit
      const rows = run(() => stmt.list.all({ school, kind, prefix: options.idPrefix ?? '', limit }));
      return rows.map((row) => toRecord<T>(row));
    },

    async ping() {
      run(() => stmt.ping.get());
    },

    async close() {
      if (db.open) db.close();
    },
  };
}

/** Validates ListOptions.limit: a non-negative integer or undefined. */
function checkLimit(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new AppError('bad_request', `list limit must be a non-negative integer, not ${limit}`);
  }
  return limit;
}

/** Only the key fields, so a StoredRecord (or anything with extra fields) can be passed as the key. */
function keyParams(k: RecordKey): RecordKey {
  return { school: k.school, kind: k.kind, id: k.id };
}

function toRecord<T>(row: Row): StoredRecord<T> {
  return {
    kind: row.kind,
    school: row.school,
    id: row.id,
    etag: row.etag,
    updatedAt: row.updated_at,
    data: JSON.parse(row.data) as T,
  };
}

function describe(k: RecordKey): string {
  return `${k.kind} record ${JSON.stringify(k.id)} in ${JSON.stringify(k.school)}`;
}

function conflict(k: RecordKey): AppError {
  return new AppError('conflict', `${describe(k)} exists already`);
}

function isSqliteError(error: unknown, code: string): boolean {
  return error instanceof Database.SqliteError && error.code === code;
}

function unavailable(file: string, error: unknown): AppError {
  const reason = error instanceof Error ? error.message : String(error);
  return new AppError('store_unavailable', `SQLite store ${file} is unavailable: ${reason}`, { cause: error });
}
