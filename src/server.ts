/**
 * The one HTTP server: Teams at /api/messages, Slack at /slack/events, health and readiness.
 * Body limits, content types and errors are decided here, once: every failure is a JSON body
 * `{ "error": { "code", "message" } }` with a 4xx/5xx status, never an HTML page or a crash.
 */
import restify, { type Request, type Response, type Server } from 'restify';
import { AppError, asAppError, stackFrames } from './errors.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store/store.ts';

/** Larger bodies are refused with 413: no Teams activity or Slack payload comes near it. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface ServerOptions {
  log: Logger;
  store: Store;
  /** Handles a validated Activity; absent when Teams is disabled. */
  teams?: { process(req: Request, res: Response): Promise<void>; validate(body: unknown): string | undefined };
  /** Slack's request listener (Bolt's HTTPReceiver); it needs the raw, unparsed body. */
  slack?: (req: Request, res: Response) => void;
  /** Extra readiness checks (name, check) beyond the store. */
  readiness?: Array<{ name: string; check(): Promise<void> }>;
  rateLimitPerMinute: number;
  /** Mounts further routes (the playground) after the standard ones. */
  extraRoutes?: (server: Server) => void;
}

function sendError(res: Response, error: AppError): void {
  if (res.headersSent) return;
  res.status(error.httpStatus);
  res.json({ error: { code: error.code, message: error.message } });
}

/**
 * What a request that failed outside a turn is answered with (errors inside a turn become an apology
 * in the chat): a refusal as itself, logged with its cause's reason, which names the problem for an
 * admin (an app id mismatch, an expired token) and never holds message text; anything else as a
 * bare 500, logged with its stack frames only.
 */
function refusalOrFailure(log: Logger, error: unknown): AppError {
  const appError = asAppError(error);
  if (appError.httpStatus < 500) {
    log.warn({ code: appError.code, reason: appError.cause instanceof Error ? appError.cause.message : undefined }, 'request refused');
    return appError;
  }
  const origin = appError.cause instanceof Error ? appError.cause : appError;
  log.error({ code: appError.code, name: origin.name, stack: stackFrames(origin) }, 'request failed');
  return new AppError('internal', 'Internal error');
}

/** Health probes: never throttled (a load balancer's probes must not be refused). */
const PROBE_PATHS = new Set(['/healthz', '/readyz']);
/**
 * Where the platforms post: every request is authenticated (Bot Framework's JWT, Slack's signature)
 * and comes from a few platform addresses (behind App Service's front end, from the same one), so
 * a per-address limit sized for one person would throttle the whole school. They get this many
 * times the limit: still a guard against a flood, never a cap on a busy morning.
 */
const PLATFORM_PATHS = new Set(['/api/messages', '/slack/events']);
export const PLATFORM_RATE_FACTOR = 20;

/** Token buckets per client address: `perMinute` a minute with bursts of five seconds' worth. */
function rateLimits(perMinute: number): restify.RequestHandler {
  const bucket = (limit: number) => {
    const perSecond = Math.max(1, Math.ceil(limit / 60));
    return restify.plugins.throttle({ burst: perSecond * 5, rate: perSecond, ip: true });
  };
  const people = bucket(perMinute);
  const platforms = bucket(perMinute * PLATFORM_RATE_FACTOR);
  return (req, res, next) => {
    const path = req.path();
    if (PROBE_PATHS.has(path)) return next();
    return (PLATFORM_PATHS.has(path) ? platforms : people)(req, res, next);
  };
}

export function createServer(options: ServerOptions): Server {
  const { log } = options;
  const server = restify.createServer({ name: 'esafety-bot', handleUncaughtExceptions: false, ignoreTrailingSlash: true });

  // restify's own errors (404, 405, body parser failures) come back in our shape too.
  server.on('restifyError', (req: Request, res: Response, err: Error & { statusCode?: number; body?: { code?: string } }, callback: () => void) => {
    const status = err.statusCode ?? 500;
    const code = status === 413 ? 'payload_too_large' : status === 404 ? 'not_found' : status === 415 ? 'unsupported_media_type' : status === 429 ? 'rate_limited' : status < 500 ? 'bad_request' : 'internal';
    const message = status === 400 && /json/i.test(err.message) ? `The body is not valid JSON: ${err.message}` : status >= 500 ? 'Internal error' : err.message;
    (err as { toJSON?: () => unknown }).toJSON = () => ({ error: { code, message } });
    if (status >= 500) log.error({ status, name: err.name }, 'request failed');
    callback();
  });

  if (options.rateLimitPerMinute > 0) server.use(rateLimits(options.rateLimitPerMinute));

  server.get('/healthz', (_req, res, next) => {
    res.json({ status: 'ok' });
    next();
  });

  server.get('/readyz', async (_req: Request, res: Response) => {
    const failures: string[] = [];
    try {
      await options.store.ping();
    } catch (error) {
      failures.push(`store: ${asAppError(error).message}`);
    }
    for (const check of options.readiness ?? []) {
      try {
        await check.check();
      } catch (error) {
        failures.push(`${check.name}: ${asAppError(error).message}`);
      }
    }
    res.status(failures.length ? 503 : 200);
    res.json(failures.length ? { status: 'unavailable', failures } : { status: 'ready' });
  });

  const requireJson = (req: Request, res: Response, next: (err?: unknown) => void) => {
    const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      sendError(res, new AppError('unsupported_media_type', `Content-Type must be application/json (got "${type || 'none'}")`));
      return next(false);
    }
    const length = Number(req.header('content-length') ?? '0');
    if (length > MAX_BODY_BYTES) {
      sendError(res, new AppError('payload_too_large', `Body is larger than ${MAX_BODY_BYTES} bytes`));
      return next(false);
    }
    next();
  };

  if (options.teams) {
    const teams = options.teams;
    server.post(
      '/api/messages',
      requireJson,
      restify.plugins.bodyParser({ maxBodySize: MAX_BODY_BYTES, mapParams: false, rejectUnknown: true }),
      async (req: Request, res: Response) => {
        const problem = teams.validate(req.body);
        if (problem) return sendError(res, new AppError('bad_request', problem));
        try {
          await teams.process(req, res);
        } catch (error) {
          sendError(res, refusalOrFailure(log, error));
        }
      },
    );
  }

  if (options.slack) {
    const listener = options.slack;
    // An async handler (restify refuses a two-argument handler that is not async) that settles once
    // Bolt has finished the response, so restify's request lifecycle matches the real one.
    server.post('/slack/events', async (req: Request, res: Response) => {
      const length = Number(req.header('content-length') ?? '0');
      if (length > MAX_BODY_BYTES) return sendError(res, new AppError('payload_too_large', `Body is larger than ${MAX_BODY_BYTES} bytes`));
      await new Promise<void>((resolve) => {
        res.once('close', resolve);
        listener(req, res);
      });
    });
  }

  options.extraRoutes?.(server);

  // Bytes that are not valid HTTP never reach restify (for example a Content-Length smaller than the
  // body, whose remainder then reads as a garbled next request). Node would answer a bare 400; answer
  // in our JSON shape instead, then close the connection, since its framing can no longer be trusted.
  server.server.on('clientError', (err: NodeJS.ErrnoException, socket: import('node:stream').Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify({
      error: tooLarge
        ? { code: 'payload_too_large', message: 'The request headers are too large' }
        : { code: 'bad_request', message: 'Malformed HTTP request (for example a Content-Length that does not match the body)' },
    });
    socket.end(`HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });

  server.pre((_req, res, next) => {
    res.setHeader('x-content-type-options', 'nosniff');
    next();
  });
  return server;
}
