/**
 * Turns a platform's refusal into a DeliveryError the outbox can act on. Shared by the adapters
 * (Teams: the connector's HTTP status; Slack: the Web API's status and error code) so that every
 * platform follows one policy:
 *
 * - 429: `throttled` (pause the whole school's sending until Retry-After);
 * - 408, 412, 500, 502, 503, 504 and network failures (no HTTP answer): `transient` (retry with backoff);
 * - anything else, notably 400, 401, 403, 404, 410, 413: `permanent` (recorded, never retried);
 * - Slack's Web API errors by their code (`slackErrorKind`): the person, channel, workspace or install
 *   gone, or a request Slack will always refuse, is permanent; `ratelimited` is throttled; any other
 *   code is transient.
 *
 * This is the one place that decides: the adapters throw what their clients threw (or pass it here)
 * and the outbox acts on the result.
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
/** The HTTP status an SDK error carries (botbuilder's RestError, @slack/web-api, fetch-style), if any. */
export function httpStatusOf(error: unknown): number | undefined {
  const e = (error ?? {}) as HttpishError;
  return [e.statusCode, e.status, e.response?.status].find((value): value is number => typeof value === 'number' && value >= 100 && value < 600);
}

export function classifyDeliveryFailure(platform: string, error: unknown): DeliveryError {
  if (error instanceof DeliveryError) return error;
  const slack = classifySlackError(platform, error);
  if (slack) return slack;
  const e = (error ?? {}) as HttpishError;
  const status = httpStatusOf(error);
  if (status !== undefined) return deliveryErrorForStatus(platform, status, headerOf(e.response?.headers, 'retry-after'), error);
  const code = typeof e.code === 'string' ? e.code : typeof (e.cause as HttpishError | undefined)?.code === 'string' ? String((e.cause as HttpishError).code) : undefined;
  if ((code && NETWORK_CODES.has(code)) || e.name === 'RestError' || e.name === 'AbortError' || e.name === 'TimeoutError') {
    return new DeliveryError('transient', `${platform} could not be reached (${code ?? String(e.name)})`, { cause: error });
  }
  const name = error instanceof Error ? error.name : typeof error;
  return new DeliveryError('permanent', `the message could not be sent to ${platform} (${name})`, { cause: error });
}

/**
 * Slack Web API error codes (`data.error`) that no retry can fix: the person, channel, workspace or
 * installation is gone or refuses, or the request itself is wrong (the same blocks would be refused
 * again). Codes starting with a prefix below are of the same families.
 */
const SLACK_PERMANENT = new Set([
  'channel_not_found',
  'user_not_found',
  'users_not_found',
  'account_inactive',
  'user_disabled',
  'not_in_channel',
  'is_archived',
  'channel_is_archived',
  'cannot_dm_bot',
  'user_is_bot',
  'messages_tab_disabled',
  'restricted_action',
  'token_revoked',
  'token_expired',
  'invalid_auth',
  'not_authed',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'app_uninstalled',
  'team_access_not_granted',
  'team_not_found',
  'team_is_restricted',
  'team_added_to_org',
  'org_login_required',
  'enterprise_is_restricted',
  'ekm_access_denied',
  'access_denied',
  'invalid_blocks',
  'invalid_blocks_format',
  'invalid_arguments',
  'msg_too_long',
  'too_many_attachments',
  'no_text',
  'invalid_metadata_format',
]);
const SLACK_PERMANENT_PREFIXES = ['team_', 'account_', 'token_'];
const SLACK_THROTTLED = new Set(['ratelimited', 'rate_limited']);

/**
 * What a Slack Web API error code means for a send. A code not known to be permanent is transient:
 * `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout`, and any code Slack adds
 * later. Retries are bounded (maxAttempts), so an unknown code costs a few tries and then fails with
 * its reason, whereas calling it permanent could silently drop someone's safeguarding alert.
 */
export function slackErrorKind(code: string): DeliveryError['kind'] {
  if (SLACK_THROTTLED.has(code)) return 'throttled';
  if (SLACK_PERMANENT.has(code) || SLACK_PERMANENT_PREFIXES.some((prefix) => code.startsWith(prefix))) return 'permanent';
  return 'transient';
}

/**
 * @slack/web-api errors, as the Slack channel's Web API client throws them (its own retries off):
 * rate limited (HTTP 429, `retryAfter` in seconds), platform errors (`data.error`), request
 * (network) errors and other HTTP errors.
 */
function classifySlackError(platform: string, error: unknown): DeliveryError | undefined {
  const e = (error ?? {}) as { code?: unknown; retryAfter?: unknown; data?: { error?: unknown }; statusCode?: unknown; headers?: unknown };
  if (typeof e.code !== 'string' || !e.code.startsWith('slack_webapi_')) return undefined;
  switch (e.code) {
    case 'slack_webapi_rate_limited_error': {
      const seconds = Number(e.retryAfter);
      return new DeliveryError('throttled', `${platform} is throttling the bot (429)`, {
        status: 429,
        retryAfterMs: e.retryAfter !== undefined && Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : undefined,
        cause: error,
      });
    }
    case 'slack_webapi_http_error':
      if (typeof e.statusCode === 'number') return deliveryErrorForStatus(platform, e.statusCode, headerOf(e.headers, 'retry-after'), error);
      return new DeliveryError('transient', `${platform} could not take the message just now (no status)`, { cause: error });
    case 'slack_webapi_platform_error': {
      // The code is Slack's fixed identifier (snake_case), never the text of what was sent; anything else is not shown.
      const code = typeof e.data?.error === 'string' && /^[a-z0-9_]{1,60}$/.test(e.data.error) ? e.data.error : 'unknown_error';
      const kind = slackErrorKind(code);
      if (kind === 'throttled') return new DeliveryError('throttled', `${platform} is throttling the bot (${code})`, { status: 429, cause: error });
      if (kind === 'permanent') return new DeliveryError('permanent', `${platform} refused the message (${code})`, { cause: error });
      return new DeliveryError('transient', `${platform} could not take the message just now (${code})`, { cause: error });
    }
    default:
      // slack_webapi_request_error (no answer: network, timeout) and any other client failure.
      return new DeliveryError('transient', `${platform} could not be reached (${e.code})`, { cause: error });
  }
}
