/**
 * How a refused proactive send reads to the outbox: the real Teams adapter (botbuilder CloudAdapter)
 * against the loopback fake connector answering each status once. The connector client's own
 * retries are off for proactive sends (one request per send: the outbox decides), and the error
 * says throttled (with Retry-After), transient or permanent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyDeliveryFailure, deliveryErrorForStatus, parseRetryAfter, slackErrorKind } from '../../src/delivery/classify.ts';
import { DeliveryError } from '../../src/delivery/types.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';
import { teamsSender } from './helpers.ts';

let connector: FakeConnector;
let requests = 0;
const send = teamsSender();
const reference = () => ({ channelId: 'emulator', serviceUrl: connector.url, conversation: { id: 'a:conv-classify' }, user: { id: '29:u' }, bot: { id: '28:bot' } });

beforeAll(async () => {
  connector = await startFakeConnector();
});
afterAll(async () => {
  await connector.close();
});

async function refusal(status: number, headers: Record<string, string> = {}): Promise<{ error: DeliveryError; requests: number }> {
  connector.failNext(status, 5, headers); // enough for any retries the client might make
  const before = connector.activities.length;
  let error: unknown;
  try {
    await send(reference(), [{ type: 'text', text: 'hello' }]);
  } catch (e) {
    error = e;
  }
  // Whatever failures are left over are not for the next test.
  const leftover = await drain();
  requests = 5 - leftover;
  expect(connector.activities.length).toBe(before);
  expect(error).toBeInstanceOf(DeliveryError);
  return { error: error as DeliveryError, requests };
}

/** Sends until a send succeeds; returns how many scripted failures were still queued. */
async function drain(): Promise<number> {
  let left = 0;
  for (;;) {
    const before = connector.activities.length;
    await send(reference(), [{ type: 'text', text: 'drain' }]).catch(() => undefined);
    if (connector.activities.length > before) {
      connector.activities.splice(before);
      return left;
    }
    left++;
  }
}

describe('the Teams adapter classifies the connector\'s refusals', () => {
  it('429 is throttled, with Retry-After in seconds or as an HTTP date, and is asked once', async () => {
    const seconds = await refusal(429, { 'Retry-After': '3' });
    expect(seconds.error).toMatchObject({ kind: 'throttled', status: 429, retryAfterMs: 3000 });
    expect(seconds.requests).toBe(1);
    const date = await refusal(429, { 'Retry-After': new Date(Date.now() + 10_000).toUTCString() });
    expect(date.error.kind).toBe('throttled');
    expect(date.error.retryAfterMs).toBeGreaterThan(7000);
    expect(date.error.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect((await refusal(429)).error).toMatchObject({ kind: 'throttled', retryAfterMs: undefined });
  });

  it.each([412, 500, 502, 503, 504])('%i is transient, asked once', async (status) => {
    const { error, requests } = await refusal(status);
    expect(error).toMatchObject({ kind: 'transient', status });
    expect(requests).toBe(1);
  });

  it.each([
    [401, /credentials/],
    [403, /blocked the bot/],
    [404, /no longer exists/],
    [400, /malformed/],
  ])('%i is permanent: %s', async (status, reason) => {
    const { error, requests } = await refusal(status);
    expect(error).toMatchObject({ kind: 'permanent', status });
    expect(error.message).toMatch(reason);
    expect(requests).toBe(1);
  });

  it('a connector that cannot be reached is transient', async () => {
    const error = await send({ ...reference(), serviceUrl: 'http://127.0.0.1:9' }, [{ type: 'text', text: 'x' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ kind: 'transient' });
    expect((error as Error).message).toMatch(/could not be reached/);
  });
});

describe('classification rules', () => {
  it('reads Retry-After as seconds (whole or decimal) or an HTTP date, and ignores nonsense', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(parseRetryAfter(new Date(Date.now() - 5000).toUTCString())).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('maps statuses, network errors, Slack Web API errors, and anything else', () => {
    expect(deliveryErrorForStatus('Teams', 408).kind).toBe('transient');
    expect(deliveryErrorForStatus('Teams', 410).kind).toBe('permanent');
    expect(deliveryErrorForStatus('Teams', 503, '7').retryAfterMs).toBe(7000);
    expect(classifyDeliveryFailure('Teams', Object.assign(new Error('x'), { code: 'ECONNRESET' })).kind).toBe('transient');
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_rate_limited_error', retryAfter: 4 })).toMatchObject({ kind: 'throttled', retryAfterMs: 4000 });
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_platform_error', data: { error: 'channel_not_found' } }).kind).toBe('permanent');
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_platform_error', data: { error: 'service_unavailable' } }).kind).toBe('transient');
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_request_error' }).kind).toBe('transient');
    expect(classifyDeliveryFailure('Teams', new TypeError('bad reference'))).toMatchObject({ kind: 'permanent' });
    const already = new DeliveryError('transient', 'as thrown');
    expect(classifyDeliveryFailure('Teams', already)).toBe(already);
    // Reasons never quote the platform's own text.
    expect(classifyDeliveryFailure('Teams', Object.assign(new Error('secret body'), { statusCode: 403 })).message).not.toContain('secret');
  });

  it('decides for Slack too: one list of its error codes, the same statuses as every platform', () => {
    for (const code of ['channel_not_found', 'account_inactive', 'user_disabled', 'cannot_dm_bot', 'token_revoked', 'invalid_auth', 'missing_scope', 'invalid_blocks', 'team_whatever_new', 'account_something_new']) {
      expect([code, slackErrorKind(code)]).toEqual([code, 'permanent']);
    }
    for (const code of ['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']) expect([code, slackErrorKind(code)]).toEqual([code, 'transient']);
    expect(slackErrorKind('ratelimited')).toBe('throttled');
    // Changed when the Slack adapter's own list was folded in here: an unknown code was permanent;
    // now it is retried a bounded number of times, so nobody silently misses an alert over a new code.
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_platform_error', data: { error: 'some_new_error_slack_adds' } })).toMatchObject({ kind: 'transient', message: 'Slack could not take the message just now (some_new_error_slack_adds)' });
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_platform_error', data: { error: 'account_inactive' } })).toMatchObject({ kind: 'permanent', message: 'Slack refused the message (account_inactive)' });
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_platform_error', data: { error: 'ratelimited' } })).toMatchObject({ kind: 'throttled', status: 429 });
    // Retry-After in seconds, whole or decimal, from the rate-limited error or an HTTP 429.
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_rate_limited_error', retryAfter: 1.5 })).toMatchObject({ kind: 'throttled', retryAfterMs: 1500 });
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_http_error', statusCode: 429, headers: { 'retry-after': '30' } })).toMatchObject({ kind: 'throttled', retryAfterMs: 30_000 });
    // Changed: the Slack adapter called these transient; every platform now treats them alike.
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_http_error', statusCode: 400 }).kind).toBe('permanent');
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_http_error', statusCode: 413 }).kind).toBe('permanent');
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_http_error', statusCode: 502 }).kind).toBe('transient');
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_http_error' }).kind).toBe('transient');
    // Changed: the Slack adapter retried anything it could not read; now, as for Teams, a failure that
    // is not the platform's or the network's (a card that cannot be rendered, a bug) is permanent.
    const odd = classifyDeliveryFailure('Slack', new Error('secret text from a payload'));
    expect(odd.kind).toBe('permanent');
    expect(odd.message).not.toContain('secret');
    // A code that is not Slack's snake_case identifier is not repeated.
    expect(classifyDeliveryFailure('Slack', { code: 'slack_webapi_platform_error', data: { error: 'Something <b>odd</b>' } }).message).toBe('Slack could not take the message just now (unknown_error)');
  });
});
