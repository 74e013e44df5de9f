/**
 * Rate limiting on the public endpoints, over HTTP on the real server: people's routes (a signed
 * policy link here) get RATE_LIMIT_PER_MINUTE per address, the platforms' webhooks many times that
 * (they come from a few platform addresses and are authenticated), and health probes are never
 * refused. The limit is 60 a minute (one a second, bursts of five), so twelve requests in a row
 * cannot all pass however slowly they run (five plus at most one a second).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../helpers/app.ts';

let running: RunningApp;

beforeAll(async () => {
  running = await startApp({ RATE_LIMIT_PER_MINUTE: '60' });
});
afterAll(async () => {
  await running?.stop();
});

/** The statuses of `count` requests made one after the other, and the body of the first refusal. */
async function statuses(count: number, request: () => Promise<Response>): Promise<number[] & { refusal?: unknown }> {
  const seen: number[] & { refusal?: unknown } = [];
  for (let i = 0; i < count; i++) {
    const response = await request();
    if (response.status === 429 && seen.refusal === undefined) seen.refusal = await response.json();
    else await response.arrayBuffer();
    seen.push(response.status);
  }
  return seen;
}

describe('rate limiting', () => {
  it('refuses a client past its limit on a page route with 429 and a JSON error', async () => {
    const seen = await statuses(12, () => fetch(`${running.url}/read/default/staff-acceptable-use/abc/teacher-1/not-a-signature`));
    expect(seen[0]).not.toBe(429);
    expect(seen).toContain(429);
    expect(seen.refusal).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
  });

  it('never refuses health and readiness probes', async () => {
    expect(await statuses(12, () => fetch(`${running.url}/healthz`))).toEqual(Array(12).fill(200));
    expect((await statuses(12, () => fetch(`${running.url}/readyz`))).every((status) => status === 200)).toBe(true);
  });

  it("lets the platforms post far more than one person may (a school's morning from one address)", async () => {
    // Not Activities (refused with 400 before any turn), but counted by the limiter all the same.
    const seen = await statuses(12, () => running.post('/api/messages', { type: 'message' }));
    expect(seen).toEqual(Array(12).fill(400));
  });
});
