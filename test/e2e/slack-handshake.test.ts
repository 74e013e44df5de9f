/**
 * Issue 2, "Must have" 2: Slack on the same server. Requests are signed per Slack's spec
 * (v0:timestamp:body, HMAC-SHA256 with the signing secret, generated per run); the bot's Web API
 * calls go to a loopback fake.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { blocksText, startFakeSlack, type FakeSlack } from '../helpers/fake-slack.ts';
import { memoryLog } from '../helpers/memory-log.ts';

const signingSecret = randomBytes(16).toString('hex');
let running: RunningApp;
let slack: FakeSlack;
const logs = memoryLog('info');

beforeAll(async () => {
  slack = await startFakeSlack();
  running = await startApp({ SLACK_SIGNING_SECRET: signingSecret, SLACK_BOT_TOKEN: 'xoxb-test', SLACK_API_URL: `${slack.url}/api/`, LOG_LEVEL: 'info' }, { log: logs.log });
  await running.app.directory.upsertSchool({ id: 'slack-school', name: 'Slack School', slackTeam: 'T0SLACK' });
});
afterAll(async () => {
  await running.stop();
  await slack.close();
});

function sign(body: string, timestamp: number, secret = signingSecret): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

function postSlack(payload: unknown, options: { timestamp?: number; secret?: string; signature?: string } = {}): Promise<Response> {
  const body = JSON.stringify(payload);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return fetch(`${running.url}/slack/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': options.signature ?? sign(body, timestamp, options.secret),
    },
    body,
  });
}

const challengePayload = { type: 'url_verification', token: 'legacy-token', challenge: 'challenge-3f9a' };

describe('POST /slack/events', () => {
  it('answers the url_verification handshake when the signature is right', async () => {
    const response = await postSlack(challengePayload);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('challenge-3f9a');
  });

  it('refuses a wrong signature with 401', async () => {
    const response = await postSlack(challengePayload, { secret: 'not-the-secret' });
    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain('challenge-3f9a');
  });

  it('refuses a request without a signature with 401, logging why through pino and not the console', async () => {
    const consoleCalls = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) => vi.spyOn(console, method));
    try {
      const linesBefore = logs.raw().length;
      const response = await fetch(`${running.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(challengePayload) });
      expect(response.status).toBe(401);
      for (const spy of consoleCalls) expect(spy).not.toHaveBeenCalled();
      expect(logs.lines().slice(linesBefore)).toEqual([expect.objectContaining({ level: 40, component: 'slack', msg: expect.stringMatching(/x-slack-signature/) })]);
    } finally {
      for (const spy of consoleCalls) spy.mockRestore();
    }
  });

  it('refuses a correctly signed request from 10 minutes ago with 401', async () => {
    const response = await postSlack(challengePayload, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(response.status).toBe(401);
  });

  it('acknowledges a signed direct message at once and replies through chat.postMessage', async () => {
    const before = slack.calls.filter((call) => call.method === 'chat.postMessage').length;
    const started = Date.now();
    const response = await postSlack({
      type: 'event_callback',
      team_id: 'T0SLACK',
      api_app_id: 'A0TEST',
      event_id: 'Ev0TEST',
      event_time: Math.floor(Date.now() / 1000),
      event: { type: 'message', channel_type: 'im', channel: 'D0TEST', user: 'U0TEACHER', text: 'whoami', ts: '1700000000.000100' },
    });
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
    const posts = (await slack.waitFor('chat.postMessage', before + 1)).slice(before);
    expect(posts[0]!.body).toMatchObject({ channel: 'D0TEST' });
    // The card as Block Kit: the header, and the facts as fields.
    const shown = blocksText(posts[0]!.body.blocks);
    expect(posts[0]!.body.blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text', text: 'Who you are to me' } });
    expect(shown).toMatch(/\*User id\*\nU0TEACHER/);
    expect(shown).toMatch(/Slack School \(slack-school\)/);
    expect(posts[0]!.authorization).toBe('Bearer xoxb-test');
  });

  it('answers an event Slack delivers again (X-Slack-Retry-Num) once, not twice', async () => {
    const payload = {
      type: 'event_callback',
      team_id: 'T0SLACK',
      api_app_id: 'A0TEST',
      event_id: 'Ev0RETRIED',
      event_time: Math.floor(Date.now() / 1000),
      event: { type: 'message', channel_type: 'im', channel: 'D0TEST', user: 'U0TEACHER', text: 'help', ts: '1700000000.000120' },
    };
    const before = slack.calls.filter((call) => call.method === 'chat.postMessage').length;
    expect((await postSlack(payload)).status).toBe(200);
    await slack.waitFor('chat.postMessage', before + 1);
    // Slack's retry: the same event id, with the retry headers, signed again.
    const body = JSON.stringify(payload);
    const timestamp = Math.floor(Date.now() / 1000);
    const retry = await fetch(`${running.url}/slack/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': sign(body, timestamp), 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' },
      body,
    });
    expect(retry.status).toBe(200);
    // A later, different message is answered: by then the retry has been through the same pipeline.
    await postSlack({ ...payload, event_id: 'Ev0AFTER', event: { ...payload.event, text: 'whoami', ts: '1700000000.000130' } });
    const posts = (await slack.waitFor('chat.postMessage', before + 2)).slice(before);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(slack.calls.filter((call) => call.method === 'chat.postMessage').length - before).toBe(2);
    expect(blocksText(posts[1]!.body.blocks)).toMatch(/Who you are to me/);
  });

  it('refuses a file shared in the direct message and says why, keeping nothing from it', async () => {
    const before = slack.calls.filter((call) => call.method === 'chat.postMessage').length;
    const response = await postSlack({
      type: 'event_callback',
      team_id: 'T0SLACK',
      event_id: 'Ev0FILE',
      event: { type: 'message', subtype: 'file_share', channel_type: 'im', channel: 'D0TEST', user: 'U0TEACHER', text: 'here is the screenshot', files: [{ id: 'F1', mimetype: 'image/png' }], ts: '1700000000.000150' },
    });
    expect(response.status).toBe(200);
    const posts = (await slack.waitFor('chat.postMessage', before + 1)).slice(before);
    expect(JSON.stringify(posts[0]!.body)).toMatch(/never accept images/);
    const questions = await running.app.store.list<any>('question', 'slack-school');
    expect(questions.some((q) => q.data.question.includes('screenshot'))).toBe(false);
  });

  it('tells a workspace that is not registered that its school is not set up', async () => {
    const before = slack.calls.filter((call) => call.method === 'chat.postMessage').length;
    const response = await postSlack({
      type: 'event_callback',
      team_id: 'T0UNKNOWN',
      event_id: 'Ev0TEST2',
      event: { type: 'message', channel_type: 'im', channel: 'D0OTHER', user: 'U0STRANGER', text: 'hello there', ts: '1700000000.000200' },
    });
    expect(response.status).toBe(200);
    const posts = (await slack.waitFor('chat.postMessage', before + 1)).slice(before);
    expect(blocksText(posts[0]!.body.blocks)).toMatch(/not set up yet/);
    expect(await running.app.store.list('user', 'slack-school')).toHaveLength(1);
  });

  it('refuses a body over 256 KB with 413 before checking it', async () => {
    const response = await postSlack({ type: 'event_callback', padding: 'x'.repeat(300 * 1024) });
    expect(response.status).toBe(413);
  });

  it('stops reading a chunked body (no Content-Length) past 256 KB and answers 413', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${running.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)), 'x-slack-signature': 'v0=00' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? resolve(-1) : reject(error)));
      for (let i = 0; i < 6; i++) req.write('x'.repeat(64 * 1024));
      req.end();
    });
    expect(status).toBe(413);
    const after = await postSlack(challengePayload);
    expect(after.status).toBe(200);
  });
});
