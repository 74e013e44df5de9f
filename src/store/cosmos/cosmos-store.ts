/**
 * The production Store: Azure Cosmos DB (NoSQL API), one container partitioned by `/school`.
 *
 * Each record is one document `{ id, school, kind, recordId, updatedAt, data }`; the Cosmos id packs
 * kind and record id (see cosmosId) so that different kinds never collide inside a school's partition.
 * Optimistic concurrency uses the document's `_etag` with If-Match. Only point operations, upsert and
 * queries inside one partition are used (no patch, batch, TTL or change feed: the local test server
 * lacks them).
 */
import { createHash } from 'node:crypto';
import type { Agent } from 'node:http';
import { CosmosClient, type Container, type CosmosClientOptions, type ItemDefinition, type SqlParameter } from '@azure/cosmos';
import type { TokenCredential } from '@azure/identity';
import { AppError } from '../../errors.ts';
import type { ListOptions, RecordKey, Store, StoredRecord } from '../store.ts';

export interface CosmosStoreOptions {
  endpoint: string;
  /** Account key. When absent, `credential` (Microsoft Entra ID) is used. */
  key?: string;
  database: string;
  /** Container name, 'records' by default. */
  container?: string;
  /** Built by the caller (e.g. DefaultAzureCredential in production); this module never builds one. */
  credential?: TokenCredential;
  agent?: Agent;
}

interface RecordDocument<T> extends ItemDefinition {
  id: string;
  school: string;
  kind: string;
  recordId: string;
  updatedAt: string;
  data: T;
}

/** Cosmos ids are limited to 255 characters. */
const MAX_ID_LENGTH = 255;

/**
 * The document id for a record: `<kind>~<id>`, both percent-encoded. encodeURIComponent escapes every
 * character Cosmos forbids in ids ('/', '\\', '?', '#') and we also escape '~', so the separator is
 * unambiguous and the mapping is one-to-one. Ids too long for Cosmos become `~~<sha256>`, which no
 * encoded form can equal (an encoded kind never contains '~'); the real id stays in `recordId`.
 */
export function cosmosId(kind: string, id: string): string {
  const encoded = `${escape(kind)}~${escape(id)}`;
  if (encoded.length <= MAX_ID_LENGTH) return encoded;
  return `~~${createHash('sha256').update(encoded).digest('hex')}`;
}

function escape(value: string): string {
  return encodeURIComponent(value).replace(/~/g, '%7E');
}

export async function createCosmosStore(options: CosmosStoreOptions): Promise<Store> {
  const endpoint = safeEndpoint(options.endpoint);
  if (!options.key && !options.credential) {
    throw new AppError('config_invalid', `Cosmos DB at ${endpoint} needs a key or a credential`);
  }
  const clientOptions: CosmosClientOptions = { endpoint: options.endpoint };
  if (options.key) clientOptions.key = options.key;
  else clientOptions.aadCredentials = options.credential;
  if (options.agent) clientOptions.agent = options.agent;
  // A plain-HTTP endpoint is only ever a local server (real accounts and the emulator are HTTPS). The
  // local server advertises https:// region endpoints it does not serve, so endpoint discovery would
  // move every request onto TLS and fail: talk to the given endpoint only.
  if (new URL(options.endpoint).protocol === 'http:') {
    clientOptions.connectionPolicy = { enableEndpointDiscovery: false };
  }
  const client = new CosmosClient(clientOptions);

  let container: Container;
  const database = client.database(options.database);
  try {
    await client.databases.createIfNotExists({ id: options.database });
    ({ container } = await database.containers.createIfNotExists({
      id: options.container ?? 'records',
      partitionKey: { paths: ['/school'] },
    }));
  } catch (error) {
    client.dispose();
    throw storeError(error, endpoint, 'start-up');
  }

  /** Runs one Cosmos call, mapping its failure to an AppError. */
  async function call<R>(what: string, action: () => Promise<R>): Promise<R> {
    try {
      return await action();
    } catch (error) {
      throw storeError(error, endpoint, what);
    }
  }

  function toDocument<T>(k: RecordKey, data: T): RecordDocument<T> {
    return {
      id: cosmosId(k.kind, k.id),
      school: k.school,
      kind: k.kind,
      recordId: k.id,
      updatedAt: new Date().toISOString(),
      data: (data ?? null) as T, // undefined would vanish from the JSON document
    };
  }

  return {
    async get<T>(k: RecordKey) {
      // A point read answers 404 without throwing.
      const { resource } = await call('get', () => container.item(cosmosId(k.kind, k.id), k.school).read<RecordDocument<T>>());
      return resource ? toRecord(resource) : undefined;
    },

    async create<T>(k: RecordKey, data: T) {
      const { resource } = await call('create', () => container.items.create<RecordDocument<T>>(toDocument(k, data)));
      return toRecord(required(resource));
    },

    async replace<T>(k: RecordKey, data: T, etag: string) {
      const { resource } = await call('replace', () =>
        container
          .item(cosmosId(k.kind, k.id), k.school)
          .replace<RecordDocument<T>>(toDocument(k, data), { accessCondition: { type: 'IfMatch', condition: etag } }),
      );
      return toRecord(required(resource));
    },

    async upsert<T>(k: RecordKey, data: T) {
      const { resource } = await call('upsert', () => container.items.upsert<RecordDocument<T>>(toDocument(k, data)));
      return toRecord(required(resource));
    },

    async delete(k: RecordKey, etag?: string) {
      try {
        await call('delete', () =>
          container
            .item(cosmosId(k.kind, k.id), k.school)
            .delete(etag === undefined ? {} : { accessCondition: { type: 'IfMatch', condition: etag } }),
        );
        return true;
      } catch (error) {
        if (error instanceof AppError && error.code === 'not_found') return false;
        throw error;
      }
    },

    async list<T>(kind: string, school: string, options: ListOptions = {}) {
      const { idPrefix, limit } = options;
      if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
        throw new AppError('bad_request', `list limit must be a non-negative integer, not ${limit}`);
      }
      // The school condition repeats the partition key on purpose: the local server ignores the
      // partitionKey option and would otherwise return other schools' records.
      const parameters: SqlParameter[] = [
        { name: '@school', value: school },
        { name: '@kind', value: kind },
      ];
      let where = 'c.school = @school AND c.kind = @kind';
      if (idPrefix) {
        where += ' AND STARTSWITH(c.recordId, @prefix)';
        parameters.push({ name: '@prefix', value: idPrefix });
      }
      let top = '';
      if (limit !== undefined) {
        top = 'TOP @limit '; // the local server lacks OFFSET ... LIMIT; TOP works on both
        parameters.push({ name: '@limit', value: limit });
      }
      const query = `SELECT ${top}* FROM c WHERE ${where} ORDER BY c.recordId ASC`;
      const { resources } = await call('list', () =>
        container.items.query<RecordDocument<T>>({ query, parameters }, { partitionKey: school }).fetchAll(),
      );
      return resources.map((doc) => toRecord(doc));
    },

    async ping() {
      try {
        await database.read();
      } catch (error) {
        // Whatever the reason (unreachable, credentials refused, database gone), the store cannot serve.
        const mapped = storeError(error, endpoint, 'ping');
        throw mapped.code === 'store_unavailable'
          ? mapped
          : new AppError('store_unavailable', mapped.message, { cause: mapped.cause });
      }
    },

    async close() {
      client.dispose();
    },
  };
}

function toRecord<T>(doc: RecordDocument<T>): StoredRecord<T> {
  return {
    kind: doc.kind,
    school: doc.school,
    id: doc.recordId,
    etag: String(doc._etag),
    updatedAt: doc.updatedAt,
    data: doc.data,
  };
}

function required<T>(resource: T | undefined): T {
  if (resource === undefined) throw new AppError('internal', 'Cosmos DB returned no document for a successful write');
  return resource;
}

/** The endpoint as it may appear in messages: origin only, so no userinfo or query ever leaks. */
function safeEndpoint(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    throw new AppError('config_invalid', 'Cosmos DB endpoint is not a URL');
  }
}

/**
 * Maps a Cosmos SDK error to an AppError. The cause is a plain copy (status, code, message): the SDK's
 * own error carries the request, whose Authorization header holds a signature or an Entra token.
 */
function storeError(error: unknown, endpoint: string, what: string): AppError {
  if (error instanceof AppError) return error;
  const e = (error ?? {}) as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown };
  const status = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const reason = typeof e.message === 'string' ? e.message.split('\n')[0] : String(error);
  const cause = Object.assign(new Error(reason), {
    name: typeof e.name === 'string' ? e.name : 'Error',
    code: e.code,
    statusCode: status,
  });
  const message = status === undefined ? noAnswerMessage(endpoint, e, reason) : `Cosmos DB at ${endpoint}: ${what} failed (${status}): ${reason}`;
  switch (status) {
    case 404:
      return new AppError('not_found', message, { cause });
    case 409:
      return new AppError('conflict', message, { cause });
    case 412:
      return new AppError('precondition_failed', message, { cause });
  }
  // No HTTP status at all means no answer (connection refused, DNS, TLS, timeout); 401/403 mean our
  // key or token is refused; 408/429/5xx mean the service cannot serve now.
  if (status === undefined || status === 401 || status === 403 || status === 408 || status === 429 || status >= 500) {
    return new AppError('store_unavailable', message, { cause });
  }
  return new AppError('internal', message, { cause });
}

/**
 * No HTTP answer at all. Readiness shows this line to whoever runs the deployment, so it says which
 * dependency and why in a few words: a network failure's code (ECONNREFUSED, ENOTFOUND, ETIMEDOUT),
 * or the managed identity that could not get a token (no request was even sent).
 */
function noAnswerMessage(endpoint: string, e: { code?: unknown; name?: unknown }, reason: string): string {
  const name = typeof e.name === 'string' ? e.name : 'Error';
  if (/Credential|Authentication/.test(name)) return `Cosmos DB at ${endpoint}: the managed identity could not get a token (${name}): ${reason}`;
  return `Cosmos DB at ${endpoint} is unreachable (${typeof e.code === 'string' && e.code ? e.code : name})`;
}
