/**
 * Starting the server when the store may not be reachable yet (Cosmos DB firewalled, its role
 * assignment still propagating, a regional outage): instead of crashing into a restart loop that
 * hides the reason, the process listens at once with a holding server that is alive (`/healthz`
 * 200) but not ready (`/readyz` 503 naming the store and why), and keeps trying to build the app in
 * the background. When the store answers, the holding server hands the port to the real app: the
 * deployment becomes ready without a restart.
 *
 * Only an unreachable store is waited for. A configuration error still stops the process before
 * this (one line per bad setting), and any other start-up failure is thrown as before.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Settings } from './config.ts';
import { asAppError, isAppError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { App } from './main.ts';

export interface StartOptions {
  /**
   * Builds the app (createApp) to listen on `port`: settings.port at first, then the port the
   * holding server bound (the same unless settings.port is 0). A store_unavailable failure is retried.
   */
  createApp(port: number): Promise<App>;
  /** First wait between attempts; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

export interface StartedServer {
  /** The bound port (settings.port, or the one the system chose for 0). */
  port: number;
  /** The app once it is running (at once when the store answered at the first attempt). */
  ready: Promise<App>;
  /** Stops trying, and closes whichever server is listening. */
  close(): Promise<void>;
}

export async function startServer(settings: Settings, log: Logger, options: StartOptions): Promise<StartedServer> {
  const retryMs = options.retryMs ?? 2_000;
  const maxRetryMs = options.maxRetryMs ?? 60_000;
  let lastProblem: string;
  try {
    const app = await options.createApp(settings.port);
    const port = await app.listen();
    return { port, ready: Promise.resolve(app), close: () => app.close() };
  } catch (error) {
    if (!isAppError(error, 'store_unavailable')) throw error;
    lastProblem = asAppError(error).message;
  }

  log.error({ problem: lastProblem }, 'store unreachable at start-up; serving /healthz and /readyz until it answers');
  const holding = createServer((req, res) => holdingResponse(req, res, lastProblem));
  await new Promise<void>((resolve, reject) => {
    holding.once('error', reject);
    holding.listen(settings.port, settings.host, () => resolve());
  });
  const port = (holding.address() as AddressInfo).port;
  const stopping = new AbortController();
  let app: App | undefined;

  const ready = (async () => {
    for (let attempt = 1, wait = retryMs; ; attempt++, wait = Math.min(wait * 2, maxRetryMs)) {
      await sleep(wait, undefined, { signal: stopping.signal });
      try {
        app = await options.createApp(port);
      } catch (error) {
        if (!isAppError(error, 'store_unavailable')) throw error;
        const problem = asAppError(error).message;
        if (problem !== lastProblem) log.error({ problem, attempt }, 'store still unreachable');
        lastProblem = problem;
        continue;
      }
      if (stopping.signal.aborted) {
        await app.close();
        throw stopping.signal.reason;
      }
      // The port is free between these two lines only: a request then is refused and retried by
      // the platform's front end, like during any restart.
      await closeServer(holding);
      await app.listen();
      log.info({ attempt }, 'store reachable; the bot is ready');
      return app;
    }
  })();
  // Whoever awaits `ready` sees a failure; the process must not die of an unobserved one.
  ready.catch((error) => {
    if (!stopping.signal.aborted) log.error({ err: { name: (error as Error).name, code: asAppError(error).code } }, 'start-up failed');
  });

  return {
    port,
    ready,
    close: async () => {
      stopping.abort(new Error('stopped before the store was reachable'));
      await ready.catch(() => undefined);
      if (app) await app.close();
      else await closeServer(holding);
    },
  };
}

/** Alive, not ready; every other path answers 503 in the server's error shape. */
function holdingResponse(req: IncomingMessage, res: ServerResponse, problem: string): void {
  const path = (req.url ?? '/').split('?')[0]!.replace(/\/$/, '');
  const [status, body] =
    req.method === 'GET' && path === '/healthz'
      ? [200, { status: 'ok' }]
      : req.method === 'GET' && path === '/readyz'
        ? [503, { status: 'unavailable', failures: [`store: ${problem}`] }]
        : [503, { error: { code: 'store_unavailable', message: 'The bot is starting: its store cannot be reached yet (see /readyz).' } }];
  req.resume();
  // No keep-alive: a connection to the holding server must not outlive the hand-over to the app.
  res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '10', 'x-content-type-options': 'nosniff', connection: 'close' });
  res.end(JSON.stringify(body));
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
