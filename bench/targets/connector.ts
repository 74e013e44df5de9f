/**
 * The fake Bot Framework connector both bots reply to: a minimal node:http server that drains the
 * body and answers 200 {"id":"x"}. It counts calls, bytes and apology replies (a turn that failed
 * inside the bot still answers 200 over HTTP, so the driver checks these counts).
 */
import '../lib/loopback-guard.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveTarget } from './protocol.ts';

let calls = 0;
let bytes = 0;
let apologies = 0;
let notFound = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (req.method !== 'POST' || !req.url?.startsWith('/v3/conversations/')) {
      notFound++;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"NotFound"}}');
      return;
    }
    calls++;
    const body = Buffer.concat(chunks);
    bytes += body.length;
    if (body.includes('something went wrong')) apologies++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"id":"x"}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  serveTarget(
    (server.address() as AddressInfo).port,
    () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
    () => ({ calls, bytes, apologies, notFound }),
  );
});
