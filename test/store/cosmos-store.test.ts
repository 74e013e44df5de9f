/**
 * The Cosmos DB store against @zeit/cosmosdb-server, in-process over plain HTTP on loopback.
 * Nothing here contacts any other host, and no Azure credential is ever built.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createHttpServer, createHttpsServer } from '@zeit/cosmosdb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenCredential } from '@azure/identity';
import { cosmosId, createCosmosStore } from '../../src/store/cosmos/cosmos-store.ts';
import { expectAppError, storeContract } from './contract.ts';
import { closedPort } from '../helpers/ports.ts';

const KEY = 'dummy-key-not-a-secret-7f3a';

async function startServer(): Promise<{ server: Server; endpoint: string }> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function stopServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

let server: Server;
let endpoint: string;
const database = `esafety-test-${randomUUID()}`;

beforeAll(async () => {
  ({ server, endpoint } = await startServer());
});
afterAll(async () => {
  await stopServer(server);
});

storeContract('Cosmos DB (local server)', async () => {
  const store = await createCosmosStore({ endpoint, key: KEY, database });
  return { store, cleanup: () => store.close() };
});

describe('Cosmos DB store specifics', () => {
  it('cosmos ids contain none of / \\ ? # and stay within 255 characters', () => {
    for (const id of ['a/b', 'a\\b', 'a?b', 'a#b', '~', '%', ' ', 'é😀', 'x'.repeat(1000)]) {
      const encoded = cosmosId('kind/#?', id);
      expect(encoded).not.toMatch(/[/\\?#]/);
      expect(encoded.length).toBeLessThanOrEqual(255);
    }
    expect(cosmosId('k~1', 'x')).not.toBe(cosmosId('k', '1~x'));
  });

  it('a second store on the same database sees the first one\'s writes (createIfNotExists is idempotent)', async () => {
    const one = await createCosmosStore({ endpoint, key: KEY, database, container: 'records' });
    const two = await createCosmosStore({ endpoint, key: KEY, database });
    const key = { school: `s-${randomUUID()}`, kind: 'k', id: '1' };
    const created = await one.create(key, { n: 1 });
    expect(await two.get(key)).toEqual(created);
    await expectAppError(two.replace(key, { n: 2 }, 'stale'), 'precondition_failed');
    await one.close();
    await two.close();
  });

  it('uses the given credential when there is no key (over HTTPS, with the given agent)', async () => {
    // The SDK refuses bearer tokens over plain HTTP, so this one runs the local server over HTTPS with
    // its self-signed certificate (accepted by this test's agent only). The credential is a stub: the
    // local server ignores authorisation; this proves the key-less path and the agent are wired.
    const tls = createHttpsServer();
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    const tlsEndpoint = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    const agent = new HttpsAgent({ rejectUnauthorized: false });
    let tokensAsked = 0;
    const credential: TokenCredential = {
      async getToken() {
        tokensAsked++;
        return { token: 'stub-token', expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    const store = await createCosmosStore({ endpoint: tlsEndpoint, database, credential, agent });
    try {
      await store.ping();
      const key = { school: 's', kind: 'k', id: '1' };
      await store.create(key, { ok: true });
      expect((await store.get(key))?.data).toEqual({ ok: true });
      expect(tokensAsked).toBeGreaterThan(0);
    } finally {
      await store.close();
      agent.destroy();
      await stopServer(tls);
    }
  });

  it('needs a key or a credential', async () => {
    await expectAppError(createCosmosStore({ endpoint, database }), 'config_invalid');
  });

  it('an unreachable endpoint at start-up is store_unavailable, naming the endpoint and never the key', async () => {
    const unreachable = `http://127.0.0.1:${await closedPort()}`;
    const error = await expectAppError(createCosmosStore({ endpoint: unreachable, key: KEY, database }), 'store_unavailable');
    expect(error.message).toContain(unreachable);
    expect(error.message).not.toContain(KEY);
    expect(JSON.stringify(error.cause) + String(error.cause)).not.toContain(KEY);
  });

  it('ping throws store_unavailable with the cause once the server is gone', async () => {
    const own = await startServer();
    const store = await createCosmosStore({ endpoint: own.endpoint, key: KEY, database });
    await store.ping();
    await stopServer(own.server);
    const error = await expectAppError(store.ping(), 'store_unavailable');
    expect(error.message).toContain(own.endpoint);
    expect(error.message).not.toContain(KEY);
    expect(error.cause).toMatchObject({ code: 'ECONNREFUSED' });
    await expectAppError(store.get({ school: 's', kind: 'k', id: '1' }), 'store_unavailable');
    await store.close();
  });
});
