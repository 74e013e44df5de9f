/**
 * A loopback stand-in for Application Insights' ingestion endpoint: takes `POST /v2/track` with a
 * JSON array of envelopes, as the real service does, and answers like it ({ itemsReceived,
 * itemsAccepted, errors }). Tests read what arrived, and can make the next requests fail.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Envelope } from '../../src/app-insights.ts';

export interface FakeAppInsights {
  /** Base URL, as in a connection string's IngestionEndpoint. */
  url: string;
  connectionString(instrumentationKey: string): string;
  /** Every envelope accepted so far, in order. */
  envelopes: Envelope[];
  /** Every request body received (accepted or not), raw. */
  bodies: string[];
  /** The next `count` requests get `status` (and nothing is accepted). */
  failNext(count: number, status: number): void;
  /** Resolves once at least `count` envelopes were accepted. */
  waitFor(count: number): Promise<Envelope[]>;
  close(): Promise<void>;
}

export async function startFakeAppInsights(): Promise<FakeAppInsights> {
  const envelopes: Envelope[] = [];
  const bodies: string[] = [];
  let failures: number[] = [];
  let waiters: Array<{ count: number; resolve: () => void }> = [];

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    bodies.push(body);
    const reply = (status: number, json: unknown) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(json));
    };
    if (req.method !== 'POST' || req.url !== '/v2/track') return reply(404, { error: 'not found' });
    if (!/application\/json/.test(req.headers['content-type'] ?? '')) return reply(400, { error: 'content type' });
    const failure = failures.shift();
    if (failure !== undefined) return reply(failure, { itemsReceived: 0, itemsAccepted: 0, errors: [] });
    let items: Envelope[];
    try {
      items = JSON.parse(body);
      if (!Array.isArray(items)) throw new Error('not an array');
    } catch {
      return reply(400, { itemsReceived: 0, itemsAccepted: 0, errors: [{ index: 0, statusCode: 400, message: 'Invalid JSON' }] });
    }
    envelopes.push(...items);
    reply(200, { itemsReceived: items.length, itemsAccepted: items.length, errors: [] });
    waiters = waiters.filter((waiter) => (envelopes.length >= waiter.count ? (waiter.resolve(), false) : true));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    connectionString: (key) => `InstrumentationKey=${key};IngestionEndpoint=${url}/;LiveEndpoint=${url}/live/`,
    envelopes,
    bodies,
    failNext: (count, status) => {
      failures = [...failures, ...Array.from({ length: count }, () => status)];
    },
    waitFor: (count) =>
      envelopes.length >= count
        ? Promise.resolve([...envelopes])
        : new Promise((resolve) => waiters.push({ count, resolve: () => resolve([...envelopes]) })),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
