/**
 * How a failed Slack Web API call reads to the outbox: throttled (429, pause the school's sending
 * for Retry-After), permanent (the person, the workspace or the install is gone: record, never
 * retry) or transient (retry with backoff). And the reference kept per user for proactive messages.
 */
import { z } from 'zod';
import { DeliveryError } from '../../delivery/types.ts';

/** Kept in the user record: enough to open (or reuse) the app's direct message with the person. */
export const slackReferenceSchema = z
  .object({
    teamId: z.string().min(1).max(40),
    enterpriseId: z.string().min(1).max(40).optional(),
    userId: z.string().min(1).max(40).optional(),
    /** The app's direct message channel with the person (D…), when known. */
    channel: z.string().min(1).max(40).optional(),
  })
  .refine((reference) => reference.userId !== undefined || reference.channel !== undefined, 'needs a user id or a channel');
export type SlackReference = z.infer<typeof slackReferenceSchema>;

/**
 * Errors that no retry can fix: the person, channel, workspace or installation is gone or refuses,
 * or the request itself is wrong (retrying the same blocks would fail the same way).
 */
const permanentErrors = new Set([
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

const permanentPrefixes = ['team_', 'account_', 'token_'];

export function isPermanentSlackError(code: string): boolean {
  return permanentErrors.has(code) || permanentPrefixes.some((prefix) => code.startsWith(prefix));
}

interface WebApiErrorLike {
  code?: string;
  /** WebAPIRateLimitedError: seconds. */
  retryAfter?: number;
  /** WebAPIPlatformError: Slack's answer (`error` is the reason code). */
  data?: { error?: string; response_metadata?: unknown };
  /** WebAPIHTTPError. */
  statusCode?: number;
  headers?: Record<string, string>;
}

const secondsToMs = (seconds: unknown): number | undefined => {
  const value = Number(seconds);
  return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
};

/** Classifies anything a Web API call threw. A DeliveryError passes through unchanged. */
export function toDeliveryError(error: unknown, what = 'Slack'): DeliveryError {
  if (error instanceof DeliveryError) return error;
  const e = (error ?? {}) as WebApiErrorLike;
  switch (e.code) {
    case 'slack_webapi_rate_limited_error':
      return new DeliveryError('throttled', `${what}: rate limited by Slack`, { retryAfterMs: secondsToMs(e.retryAfter), status: 429, cause: error });
    case 'slack_webapi_platform_error': {
      const reason = String(e.data?.error ?? 'unknown_error');
      if (reason === 'ratelimited' || reason === 'rate_limited') return new DeliveryError('throttled', `${what}: ${reason}`, { status: 429, cause: error });
      return new DeliveryError(isPermanentSlackError(reason) ? 'permanent' : 'transient', `${what}: ${reason}`, { cause: error });
    }
    case 'slack_webapi_http_error': {
      const status = Number(e.statusCode);
      if (status === 429) return new DeliveryError('throttled', `${what}: HTTP 429`, { retryAfterMs: secondsToMs(e.headers?.['retry-after']), status, cause: error });
      const kind = status === 401 || status === 403 || status === 404 || status === 410 ? 'permanent' : 'transient';
      return new DeliveryError(kind, `${what}: HTTP ${status}`, { status, cause: error });
    }
    default:
      // Network errors (slack_webapi_request_error), timeouts and anything unexpected: worth another try.
      // The reason is fixed text: an error's own message may echo what was sent.
      return new DeliveryError('transient', `${what}: the request failed (${e.code ?? (error instanceof Error ? error.name : typeof error)})`, { cause: error });
  }
}
