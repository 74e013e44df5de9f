/**
 * A loopback stand-in for the Slack Web API: answers `{ ok: true }` to any POST /api/<method> and
 * records the method and its arguments (form-encoded or JSON), so a test can see what the bot posted.
 * Point the app at it with SLACK_API_URL = `${url}/api/`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  method: string;
  body: Record<string, unknown>;
  authorization?: string;
}

export interface FakeSlack {
  url: string;
  calls: SlackCall[];
  /** Resolves once at least `count` calls of `method` have arrived. */
  waitFor(method: string, count?: number, timeoutMs?: number): Promise<SlackCall[]>;
  close(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const waiters: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      const match = /^\/api\/([A-Za-z0-9_.]+)/.exec(req.url ?? '');
      // restify patches http.ServerResponse in this process (writeHead no longer returns `res`): no chaining.
      if (req.method !== 'POST' || !match) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"ok":false,"error":"unknown_method"}');
        return;
      }
      const type = req.headers['content-type'] ?? '';
      let body: Record<string, unknown> = {};
      if (type.includes('application/json')) body = raw ? JSON.parse(raw) : {};
      else for (const [key, value] of new URLSearchParams(raw)) body[key] = value;
      calls.push({ method: match[1]!, body, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, channel: body.channel, ts: `${Date.now() / 1000}` }));
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    waitFor: (method, count = 1, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const matching = () => calls.filter((call) => call.method === method);
        const deadline = setTimeout(() => reject(new Error(`expected ${count} ${method} calls, got ${matching().length}`)), timeoutMs);
        const check = () => {
          if (matching().length >= count) {
            clearTimeout(deadline);
            resolve(matching());
          } else waiters.push(check);
        };
        check();
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
