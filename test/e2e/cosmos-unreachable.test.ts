/**
 * Issue 7, "Bad input": a deployment whose Cosmos DB cannot be reached fails readiness with a
 * message that says which, stays alive, and becomes ready without a restart once the store answers.
 * Cosmos DB is first a closed loopback port, then @zeit/cosmosdb-server started on that port.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHttpServer } from '@zeit/cosmosdb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, type Settings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { createApp } from '../../src/main.ts';
import { startServer, type StartedServer } from '../../src/startup.ts';
import { repoRoot } from '../helpers/app.ts';
import { closedPort } from '../helpers/ports.ts';

const KEY = 'dummy-key-for-the-local-server-5c1e';

let dataDir: string;
let cosmosPort: number;
let endpoint: string;
let settings: Settings;
let started: StartedServer;
let cosmos: Server | undefined;
let url: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-unreachable-'));
  cosmosPort = await closedPort();
  endpoint = `http://127.0.0.1:${cosmosPort}`;
  settings = loadSettings({
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    POLICIES_DIR: path.join(repoRoot, 'policies'),
    RATE_LIMIT_PER_MINUTE: '0',
    STORE: 'cosmos',
    COSMOS_ENDPOINT: endpoint,
    COSMOS_KEY: KEY,
    COSMOS_DATABASE: `esafety-late-${randomUUID()}`,
  });
  const log = silentLogger();
  started = await startServer(settings, log, { createApp: (port) => createApp({ ...settings, port }, log), retryMs: 100, maxRetryMs: 200 });
  url = `http://127.0.0.1:${started.port}`;
});
afterAll(async () => {
  await started?.close();
  if (cosmos) {
    cosmos.closeAllConnections();
    await new Promise<void>((resolve) => cosmos!.close(() => resolve()));
  }
  await rm(dataDir, { recursive: true, force: true });
});

describe('Cosmos DB unreachable at start-up', () => {
  it('is alive, not ready, and readiness names the store, its endpoint and the reason (never the key)', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const response = await fetch(`${url}/readyz`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { status: string; failures: string[] };
    expect(body).toEqual({ status: 'unavailable', failures: [`store: Cosmos DB at ${endpoint} is unreachable (ECONNREFUSED)`] });
    expect(JSON.stringify(body)).not.toContain(KEY);
  });

  it('answers messages with 503 in the usual error shape meanwhile', async () => {
    const response = await fetch(`${url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('store_unavailable');
  });

  it('becomes ready on the same port, without a restart, once Cosmos DB answers', async () => {
    cosmos = createHttpServer();
    await new Promise<void>((resolve) => cosmos!.listen(cosmosPort, '127.0.0.1', resolve));
    const app = await started.ready;
    expect(app.settings.store.kind).toBe('cosmos');
    const response = await fetch(`${url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
    // The real app now serves the port: the default school was prepared in the store that came back.
    expect(await app.directory.getSchool('default')).toMatchObject({ id: 'default' });
  });
});
