/**
 * Issue 2, "Must have" 5: the whole app on the Cosmos DB store. @zeit/cosmosdb-server runs in this
 * process over plain HTTP on loopback; the key is a dummy the local server ignores (no Azure
 * credential is ever built: COSMOS_KEY is set).
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpServer } from '@zeit/cosmosdb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';

let cosmos: Server;
let endpoint: string;
let running: RunningApp;
let connector: FakeConnector;
let cosmosStopped = false;

async function stopCosmos(): Promise<void> {
  if (cosmosStopped) return;
  cosmosStopped = true;
  cosmos.closeAllConnections();
  await new Promise<void>((resolve) => cosmos.close(() => resolve()));
}

beforeAll(async () => {
  cosmos = createHttpServer();
  await new Promise<void>((resolve) => cosmos.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(cosmos.address() as AddressInfo).port}`;
  connector = await startFakeConnector();
  running = await startApp({ STORE: 'cosmos', COSMOS_ENDPOINT: endpoint, COSMOS_KEY: 'dummy-key-for-the-local-server', COSMOS_DATABASE: `esafety-e2e-${randomUUID()}` });
});
afterAll(async () => {
  await running.stop();
  await connector.close();
  await stopCosmos();
});

describe('the app on Cosmos DB', () => {
  it('is ready', async () => {
    expect(running.settings.store.kind).toBe('cosmos');
    const response = await fetch(`${running.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('answers a question with a citation, and keeps the question in the school partition', async () => {
    const before = connector.activities.length;
    const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'can pupils use phones in class?', userId: 'cosmos-teacher' }));
    expect(response.status).toBe(200);
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    expect(cardText(cardOf(reply!.activity))).toMatch(/Mobile (Phones )?and Personal Devices.*version \d{4}/);
    const questions = await running.app.store.list<{ askedBy: string }>('question', 'default');
    expect(questions.map((q) => q.data.askedBy)).toEqual(['cosmos-teacher']);
  });

  it('is not ready once Cosmos DB is gone, and says which dependency and why', async () => {
    await stopCosmos();
    const response = await fetch(`${running.url}/readyz`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { status: string; failures: string[] };
    expect(body.status).toBe('unavailable');
    expect(body.failures).toHaveLength(1);
    expect(body.failures[0]).toMatch(/^store: /);
    expect(body.failures[0]).toContain(endpoint);
    expect(body.failures[0]).toMatch(/ECONNREFUSED|unreachable|refused/i);
    expect(body.failures[0]).not.toContain('dummy-key-for-the-local-server');
    // Liveness is not readiness: the process is still alive.
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
  });
});
