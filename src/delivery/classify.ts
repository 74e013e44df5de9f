/**
 * Turns a platform's refusal into a DeliveryError the outbox can act on. Shared by the adapters
 * (Teams: the connector's HTTP status; Slack: the Web API's status and error code) so that every
 * platform follows one policy:
 *
 * - 429: `throttled` (pause the whole school's sending until Retry-After);
 * - 408, 412, 500, 502, 503, 504 and network failures (no HTTP answer): `transient` (retry with backoff);
 * - anything else, notably 400, 401, 403, 404, 410, 413: `permanent` (recorded, never retried).
 *
 * Reasons are short and fixed: they never quote the platform's error text, which may echo content.
 */
import { DeliveryError } from './types.ts';

const TRANSIENT_STATUSES = new Set([408, 412, 500, 502, 503, 504]);

/** Error codes Node and undici use when no HTTP answer came back. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'REQUEST_SEND_ERROR',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

const PERMANENT_REASONS: Record<number, string> = {
  400: 'the platform rejected the message as malformed (400)',
  401: "the platform refused the bot's credentials (401)",
  403: 'the person has blocked the bot, or the app is not installed for them (403)',
  404: 'the conversation or the person no longer exists (404)',
  410: 'the conversation no longer exists (410)',
  413: 'the message is too large for the platform (413)',
};

/**
 * Parses a Retry-After header: delay-seconds (integer, or decimal as some services send) or an
 * HTTP-date. Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** The classification for an HTTP status (and its Retry-After header, for 429 and 503). */
export function deliveryErrorForStatus(platform: string, status: number, retryAfter?: string | null, cause?: unknown): DeliveryError {
  const retryAfterMs = parseRetryAfter(retryAfter);
  if (status === 429) return new DeliveryError('throttled', `${platform} is throttling the bot (429)`, { status, retryAfterMs, cause });
  if (TRANSIENT_STATUSES.has(status) || status >= 500) {
    return new DeliveryError('transient', `${platform} could not take the message just now (${status})`, { status, retryAfterMs, cause });
  }
  return new DeliveryError('permanent', PERMANENT_REASONS[status] ?? `${platform} refused the message (${status})`, { status, cause });
}

interface HttpishError {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  status?: unknown;
  response?: { status?: unknown; headers?: unknown };
  cause?: unknown;
}

function headerOf(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as { get?: (n: string) => unknown } & Record<string, unknown>;
  if (typeof h.get === 'function') {
    const value = h.get(name);
    return value === undefined || value === null ? undefined : String(value);
  }
  const found = Object.keys(h).find((key) => key.toLowerCase() === name);
  return found === undefined ? undefined : String(h[found]);
}

/**
 * Classifies anything a platform client threw: an HTTP error with a status (Azure RestError,
 * fetch-style errors), a network failure (transient), or a DeliveryError already (kept as it is).
 * Anything else (a malformed conversation reference, a bug) is permanent: retrying cannot help.
 */
export function classifyDeliveryFailure(platform: string, error: unknown): DeliveryError {
  if (error instanceof DeliveryError) return error;
  const slack = classifySlackError(platform, error);
  if (slack) return slack;
  const e = (error ?? {}) as HttpishError;
  const status = [e.statusCode, e.status, e.response?.status].find((value): value is number => typeof value === 'number' && value >= 100 && value < 600);
  if (status !== undefined) return deliveryErrorForStatus(platform, status, headerOf(e.response?.headers, 'retry-after'), error);
  const code = typeof e.code === 'string' ? e.code : typeof (e.cause as HttpishError | undefined)?.code === 'string' ? String((e.cause as HttpishError).code) : undefined;
  if ((code && NETWORK_CODES.has(code)) || e.name === 'RestError' || e.name === 'AbortError' || e.name === 'TimeoutError') {
    return new DeliveryError('transient', `${platform} could not be reached (${code ?? String(e.name)})`, { cause: error });
  }
  const name = error instanceof Error ? error.name : typeof error;
  return new DeliveryError('permanent', `the message could not be sent to ${platform} (${name})`, { cause: error });
}

/** Slack platform errors worth retrying; every other `data.error` (channel_not_found, not_in_channel,
 * account_inactive, cannot_dm_bot, invalid_auth, token_revoked, missing_scope...) is permanent. */
const SLACK_TRANSIENT = new Set(['fatal_error', 'internal_error', 'service_unavailable', 'request_timeout', 'ratelimited']);

/**
 * @slack/web-api errors, as a Slack sender that lets them through would throw them: rate limited
 * (with `retryAfter` in seconds), platform errors (`data.error`), request (network) and HTTP errors.
 */
function classifySlackError(platform: string, error: unknown): DeliveryError | undefined {
  const e = (error ?? {}) as { code?: unknown; retryAfter?: unknown; data?: { error?: unknown }; statusCode?: unknown; headers?: unknown };
  if (typeof e.code !== 'string' || !e.code.startsWith('slack_webapi_')) return undefined;
  switch (e.code) {
    case 'slack_webapi_rate_limited_error':
      return new DeliveryError('throttled', `${platform} is throttling the bot (429)`, {
        status: 429,
        retryAfterMs: typeof e.retryAfter === 'number' ? e.retryAfter * 1000 : undefined,
        cause: error,
      });
    case 'slack_webapi_request_error':
      return new DeliveryError('transient', `${platform} could not be reached`, { cause: error });
    case 'slack_webapi_http_error':
      return typeof e.statusCode === 'number' ? deliveryErrorForStatus(platform, e.statusCode, headerOf(e.headers, 'retry-after'), error) : undefined;
    case 'slack_webapi_platform_error': {
      const code = typeof e.data?.error === 'string' ? e.data.error : 'unknown';
      if (SLACK_TRANSIENT.has(code)) return new DeliveryError(code === 'ratelimited' ? 'throttled' : 'transient', `${platform} could not take the message just now (${code})`, { cause: error });
      return new DeliveryError('permanent', `${platform} refused the message (${code})`, { cause: error });
    }
  }
  return undefined;
}
