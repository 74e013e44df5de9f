/**
 * The playground's loopback Direct Line bridge over plain HTTP (no browser): what the page does,
 * request by request. The real app, the real Teams adapter: every reply below came through
 * /api/messages → CloudAdapter → the bridge's connector endpoints.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { notLocalReason } from '../../src/adapters/playground/local-only.ts';
import { malformedSubmission } from '../../src/adapters/playground/bridge.ts';
import { createPlayground } from '../../src/adapters/playground/playground.ts';
import { silentLogger } from '../../src/logger.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { cardText, messageActivity } from '../helpers/activities.ts';
import { cardIn, directLine, fromBot, type Activity } from './playground-client.ts';

const TEACHER = 'playground-teacher';
const COORDINATOR = 'playground-coordinator';
const UNCOVERED = 'when is the staff christmas party this year';

/** A request with a Host header of our choosing (fetch() will not send one). */
function rawRequest(baseUrl: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const url = new URL(`${baseUrl}${path}`);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

describe('settings', () => {
  const base = { DATA_DIR: '/tmp/unused', NODE_ENV: 'development' };
  it('is on outside production, off in production, and local-only unless PLAYGROUND_PUBLIC', () => {
    expect(loadSettings(base).playground).toEqual({ enabled: true, public: false });
    expect(loadSettings({ ...base, NODE_ENV: 'test' }).playground.enabled).toBe(true);
    const production = { NODE_ENV: 'production', TEAMS_ENABLED: 'false', STORE: 'cosmos', COSMOS_ENDPOINT: 'https://cosmos.invalid:8081' };
    expect(loadSettings(production).playground.enabled).toBe(false);
    expect(loadSettings({ ...production, PLAYGROUND_ENABLED: 'true' }).playground.enabled).toBe(true);
    expect(loadSettings({ ...base, PLAYGROUND_ENABLED: 'off' }).playground.enabled).toBe(false);
    expect(loadSettings({ ...base, PLAYGROUND_PUBLIC: 'yes' }).playground.public).toBe(true);
    expect(() => loadSettings({ ...base, PLAYGROUND_ENABLED: 'maybe' })).toThrow(/PLAYGROUND_ENABLED: expected true or false/);
  });

  it('grants the demo roles only outside production', async () => {
    const calls: string[] = [];
    const directory = {
      noteUserSeen: async (_school: string, seen: { id: string }) => void calls.push(`seen ${seen.id}`),
      grantRole: async (_school: string, id: string, role: string) => void calls.push(`grant ${id} ${role}`),
    };
    const settings = loadSettings({ DATA_DIR: '/tmp/unused', NODE_ENV: 'test' });
    const make = (production: boolean) =>
      createPlayground({ settings: { ...settings, production }, log: silentLogger(), bot: {} as never, directory: directory as never });
    await make(true).prepare();
    expect(calls).toEqual([]);
    await make(false).prepare();
    expect(calls).toEqual(expect.arrayContaining([`grant ${COORDINATOR} coordinator`, 'grant playground-dsl dsl', 'grant playground-management management']));
  });
});

describe('who may use it', () => {
  const request = (remoteAddress: string, localAddress: string, headers: Record<string, string> = {}) =>
    ({ socket: { remoteAddress, localAddress }, headers: { host: 'localhost:3978', ...headers } }) as never;

  it('answers this machine only: loopback peers, no proxy, a Host that names this machine', () => {
    expect(notLocalReason(request('127.0.0.1', '127.0.0.1'))).toBeUndefined();
    expect(notLocalReason(request('::1', '::1', { host: '[::1]:3978' }))).toBeUndefined();
    expect(notLocalReason(request('::ffff:127.0.0.1', '::ffff:127.0.0.1', { host: '127.0.0.1:3978' }))).toBeUndefined();
    // HOST bound to one interface: the server reaching itself on that address is this machine.
    expect(notLocalReason(request('10.1.2.3', '10.1.2.3', { host: '10.1.2.3:3978' }))).toBeUndefined();
    expect(notLocalReason(request('10.1.2.9', '10.1.2.3'))).toMatch(/another machine/);
    expect(notLocalReason(request('127.0.0.1', '127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }))).toMatch(/proxy/);
    expect(notLocalReason(request('127.0.0.1', '127.0.0.1', { host: 'rebound.example.com' }))).toMatch(/Host/);
  });
});

describe('the bridge', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp();
  });
  afterAll(async () => {
    await running?.stop();
  });
  const dl = () => directLine(running.url);

  it('serves the page, with Web Chat from the installed package and nothing from elsewhere', async () => {
    const page = await fetch(`${running.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/connect-src 'self'/);
    const html = await page.text();
    expect(html).toMatch(/<title>esafety-bot playground/);
    expect(html.match(/<p class="intro">/g)).toHaveLength(2);
    expect(html).toMatch(/<label for="identity">/);
    for (const id of [TEACHER, COORDINATOR, 'playground-dsl', 'playground-management']) expect(html).toContain(`data-user-id="${id}"`);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    const bundle = await fetch(`${running.url}/playground/webchat.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);
    expect((await fetch(`${running.url}/playground/playground.js`)).status).toBe(200);
  });

  it('refuses requests whose Host does not name this machine, on every playground route', async () => {
    for (const [method, path] of [['GET', '/'], ['POST', '/v3/directline/conversations'], ['GET', '/v3/directline/conversations/playground-chat-teacher/activities'], ['POST', '/v3/conversations/playground-chat-teacher/activities']]) {
      const response = await rawRequest(running.url, method!, path!, { host: 'attacker.example:3978' });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(JSON.parse(response.body).error.message).toMatch(/only requests made on this machine.*PLAYGROUND_PUBLIC/);
    }
  });

  it('starts a conversation, takes a question, and returns the echo then the cited answer', async () => {
    const chat = await dl().start(TEACHER);
    expect(chat.conversationId).toBe('playground-chat-teacher');
    const posted = await chat.post({ text: 'can kids use their mobiles in my lesson?', clientActivityID: 'q-1' });
    expect(posted.status).toBe(200);
    expect(posted.body.id).toEqual(expect.any(String));
    const echo = await chat.waitFor((a) => a.channelData?.clientActivityID === 'q-1', { what: 'echo' });
    expect(echo).toMatchObject({ id: posted.body.id, from: { id: TEACHER, role: 'user' }, text: 'can kids use their mobiles in my lesson?' });
    const answer = await chat.waitFor((a) => fromBot(a) && Boolean(cardIn(a)), { what: 'answer card' });
    expect(answer.replyToId).toBe(posted.body.id);
    const shown = cardText(cardIn(answer));
    expect(shown).toMatch(/Mobile (Phones )?and Personal Devices/i);
    expect(shown).toMatch(/version 2026/);
    // Nothing new: the watermark moves on.
    expect(await chat.poll()).toEqual([]);
  });

  it('sends as the conversation\'s person whatever the page puts in `from`, with that person\'s roles', async () => {
    const chat = await dl().start(COORDINATOR);
    const before = chat.seen.length;
    await chat.post({ text: 'whoami', from: { id: 'playground-management', role: 'user' } });
    const reply = await chat.waitFor((a) => fromBot(a) && Boolean(cardIn(a)), { since: before, what: 'whoami card' });
    const shown = cardText(cardIn(reply));
    expect(shown).toContain(`User id: ${COORDINATOR}`);
    expect(shown).toContain('Platform: playground');
    expect(shown).toMatch(/Roles: staff, coordinator/);
  });

  it('refuses people and conversations that are not the playground\'s', async () => {
    const start = await fetch(`${dl().domain}/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":{"id":"someone-else"}}' });
    expect(start.status).toBe(400);
    expect((await start.json()).error.message).toMatch(/playground's people/);
    const unknown = await fetch(`${dl().domain}/conversations/a:conv-1/activities`);
    expect(unknown.status).toBe(404);
    const connector = await running.post('/v3/conversations/no-such-chat/activities', { type: 'message', text: 'hi' });
    expect(connector.status).toBe(404);
  });

  it('answers bad requests with a JSON error, not a crash', async () => {
    const chat = await dl().start(TEACHER);
    const url = `${dl().domain}/conversations/${chat.conversationId}/activities`;
    const notJson = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":' });
    expect(notJson.status).toBe(400);
    expect((await notJson.json()).error.code).toBe('bad_request');
    const wrongType = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(wrongType.status).toBe(415);
    const noType = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' });
    expect(noType.status).toBe(400);
    expect((await noType.json()).error.message).toMatch(/type/);
  });

  describe('card submissions from the page', () => {
    it('says clearly in the chat when a submission is malformed, and does nothing', async () => {
      expect(malformedSubmission({ route: 'qa.feedback' })).toBeUndefined();
      const chat = await dl().start(TEACHER);
      await chat.poll();
      for (const [value, expected] of [
        ['just a string', /could not be used \(it is not a form\)/],
        [[1, 2], /could not be used \(it is not a form\)/],
        [{ questionId: 'x' }, /could not be used \(it names no action\)/],
        [{ route: 42 }, /could not be used \(it names no action\)/],
        [{ route: 'no.such.route' }, /didn't recognise that button or form/],
        [{ route: 'qa.feedback', questionId: 7, helpful: 'very' }, /sent something I can't use/],
      ] as const) {
        const before = chat.seen.length;
        const posted = await chat.post({ value });
        expect(posted.status).toBe(200);
        const reply = await chat.waitFor(fromBot, { since: before, what: `reply to ${JSON.stringify(value)}` });
        expect(reply.text).toMatch(expected);
      }
    });

    it('does not act twice on a replayed post: one answer, and a message saying so', async () => {
      const chat = await dl().start(TEACHER);
      await chat.poll();
      const before = chat.seen.length;
      const first = await chat.post({ text: 'what is the password length for staff accounts?', clientActivityID: 'replay-me' });
      await chat.waitFor((a) => fromBot(a) && a.replyToId === first.body.id, { since: before, what: 'first answer' });
      const again = await chat.post({ text: 'what is the password length for staff accounts?', clientActivityID: 'replay-me' });
      expect(again.body.id).toBe(first.body.id);
      const note = await chat.waitFor((a) => fromBot(a) && /already sent/.test(a.text ?? ''), { since: before, what: 'replay notice' });
      expect(note.text).toMatch(/not sent again/);
      await chat.poll();
      const fresh = chat.seen.slice(before);
      expect(fresh.filter((a) => a.channelData?.clientActivityID === 'replay-me')).toHaveLength(1);
      expect(fresh.filter((a) => fromBot(a) && cardIn(a))).toHaveLength(1);
    });

    it('a replayed form says so too, and a second click on the same button is refused by the bot', async () => {
      const chat = await dl().start(TEACHER);
      await chat.poll();
      let before = chat.seen.length;
      await chat.post({ text: 'how do i book the minibus for a trip' });
      const notCovered = await chat.waitFor((a) => /don't cover that/.test(cardText(cardIn(a))), { since: before, what: 'not-covered card' });
      const escalate = cardIn(notCovered)!.actions.find((a: Activity) => a.data?.route === 'qa.escalate').data;
      before = chat.seen.length;
      await chat.post({ value: escalate, clientActivityID: 'esc-1' });
      await chat.waitFor((a) => fromBot(a) && /coordinator/.test(a.text ?? ''), { since: before, what: 'escalation confirmation' });
      before = chat.seen.length;
      await chat.post({ value: escalate, clientActivityID: 'esc-1' });
      expect((await chat.waitFor(fromBot, { since: before })).text).toMatch(/That form was already sent.*nothing was done twice/);
      before = chat.seen.length;
      await chat.post({ value: escalate, clientActivityID: 'esc-2' });
      expect((await chat.waitFor(fromBot, { since: before })).text).toMatch(/already with the coordinator/);
    });
  });

  it('delivers proactive messages to playground people: an escalation reaches the coordinator, the answer the teacher', async () => {
    // A fresh app: the coordinator has never opened their chat.
    const fresh = await startApp();
    try {
      const teacher = await directLine(fresh.url).start(TEACHER);
      await teacher.post({ text: UNCOVERED });
      const notCovered = await teacher.waitFor((a) => /don't cover that/.test(cardText(cardIn(a))), { what: 'not-covered card' });
      const escalate = cardIn(notCovered)!.actions.find((a: Activity) => a.data?.route === 'qa.escalate').data;
      let before = teacher.seen.length;
      await teacher.post({ value: escalate });
      expect((await teacher.waitFor(fromBot, { since: before })).text).toMatch(/I've sent your question to the e-safety coordinator/);

      const coordinator = directLine(fresh.url).resume('playground-chat-coordinator');
      const escalation = await coordinator.waitFor((a) => /policies do not answer/.test(cardText(cardIn(a))), { what: 'escalation card' });
      expect(cardText(cardIn(escalation))).toContain(UNCOVERED);
      const send = cardIn(escalation)!.actions.find((a: Activity) => a.data?.route === 'qa.reply').data;
      await coordinator.post({ value: { ...send, answer: 'It is on the last Friday of term.', save: 'false' } });
      expect((await coordinator.waitFor((a) => fromBot(a) && /Thanks\./.test(a.text ?? ''))).text).toMatch(/Your answer has been sent/);

      before = teacher.seen.length;
      const answer = await teacher.waitFor((a) => /coordinator has answered/.test(cardText(cardIn(a))), { since: before, what: 'coordinator answer' });
      expect(cardText(cardIn(answer))).toContain('It is on the last Friday of term.');
    } finally {
      await fresh.stop();
    }
  });
});

describe('alerts and acknowledgement requests in the playground', () => {
  it('brings the coordinator\'s alert and a published policy to the teacher, who can read and accept it', async () => {
    const fresh = await startApp();
    try {
      const coordinator = await directLine(fresh.url).start(COORDINATOR);
      await coordinator.post({ text: 'alert critical A fake parent survey link is going round: do not open it.' });
      await coordinator.waitFor((a) => fromBot(a) && /is going to \d+ people/.test(a.text ?? ''), { what: 'alert confirmation' });
      const teacher = directLine(fresh.url).resume('playground-chat-teacher');
      const alert = await teacher.waitFor((a) => /Critical e-safety alert/.test(cardText(cardIn(a))), { what: 'alert card' });
      expect(cardText(cardIn(alert))).toContain('fake parent survey link');

      await coordinator.post({ text: 'policies publish staff-acceptable-use due 2099-12-31' });
      const request = await teacher.waitFor((a) => /Please read and accept/.test(cardText(cardIn(a))), { what: 'acknowledgement request' });
      const [read, accept] = cardIn(request)!.actions;
      const page = await fetch(String(read.url).replace(/^https?:\/\/[^/]+/, fresh.url));
      expect(page.status).toBe(200);
      const before = teacher.seen.length;
      await teacher.post({ value: accept.data });
      expect((await teacher.waitFor((a) => fromBot(a) && /acceptance of/.test(a.text ?? ''), { since: before })).text).toMatch(/is recorded/);
    } finally {
      await fresh.stop();
    }
  });
});

describe('progress cards in the playground', () => {
  it('updates the coordinator\'s alert progress card in place: Refresh re-sends the same activity id', async () => {
    const fresh = await startApp();
    try {
      const coordinator = await directLine(fresh.url).start(COORDINATOR);
      await coordinator.post({ text: 'alert critical A fake parent survey link is going round: do not open it.' });
      const sent = await coordinator.waitFor((a) => fromBot(a) && /is going to \d+ people/.test(a.text ?? ''), { what: 'alert confirmation' });
      const alertId = /alert-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}/.exec(sent.text)![0];
      let since = coordinator.seen.length;
      await coordinator.post({ text: `alert status ${alertId}` });
      const status = await coordinator.waitFor((a) => fromBot(a) && cardText(cardIn(a)).includes(`Alert ${alertId}`), { since, what: 'progress card' });
      const refresh = cardIn(status)!.actions.find((a: { title: string }) => a.title === 'Refresh');
      since = coordinator.seen.length;
      await coordinator.post({ value: refresh.data });
      const updated = await coordinator.waitFor((a) => fromBot(a) && Boolean(cardIn(a)), { since, what: 'the updated progress card' });
      expect(updated.id).toBe(status.id);
      expect(cardText(cardIn(updated))).toContain(`Alert ${alertId}`);
    } finally {
      await fresh.stop();
    }
  });
});

describe('switched off, or opened to other machines', () => {
  it('is not there with PLAYGROUND_ENABLED=false', async () => {
    const off = await startApp({ PLAYGROUND_ENABLED: 'false' });
    try {
      expect((await fetch(`${off.url}/`)).status).toBe(404);
      expect((await off.post('/v3/directline/conversations', {})).status).toBe(404);
      expect((await off.post('/v3/conversations/playground-chat-teacher/activities', { type: 'message' })).status).toBe(404);
      expect(await off.app.directory.getUser('default', COORDINATOR)).toBeUndefined();
    } finally {
      await off.stop();
    }
  });

  it('answers any Host with PLAYGROUND_PUBLIC=true', async () => {
    const open = await startApp({ PLAYGROUND_PUBLIC: 'true' });
    try {
      expect((await rawRequest(open.url, 'GET', '/', { host: 'bot.school.example' })).status).toBe(200);
    } finally {
      await open.stop();
    }
  });
});

describe('across a server restart', () => {
  it('carries on: the old watermark and conversation still work, and proactive messages still arrive', async () => {
    const first = await startApp();
    const port = new URL(first.url).port;
    const dataDir = first.dataDir;
    const teacher = await directLine(first.url).start(TEACHER);
    await teacher.post({ text: 'can kids use their mobiles in my lesson?' });
    await teacher.waitFor((a) => fromBot(a) && Boolean(cardIn(a)), { what: 'answer before the restart' });
    const watermark = teacher.watermark;
    await first.app.close();

    // While the server is down, polls fail to connect (the page shows "reconnecting").
    await expect(fetch(`${first.url}/v3/directline/conversations/${teacher.conversationId}/activities`)).rejects.toThrow();

    const second = await startApp({ PORT: port }, { dataDir });
    try {
      expect(second.url).toBe(first.url);
      const page = directLine(second.url).resume(teacher.conversationId, watermark);
      expect(await page.poll()).toEqual([]);
      await page.post({ text: UNCOVERED });
      const notCovered = await page.waitFor((a) => /don't cover that/.test(cardText(cardIn(a))), { what: 'answer after the restart' });
      // Still the teacher's question history: the escalation works and reaches the coordinator.
      const escalate = cardIn(notCovered)!.actions.find((a: Activity) => a.data?.route === 'qa.escalate').data;
      await page.post({ value: escalate });
      const coordinator = directLine(second.url).resume('playground-chat-coordinator');
      await coordinator.waitFor((a) => /policies do not answer/.test(cardText(cardIn(a))), { what: 'escalation after the restart' });
    } finally {
      await second.stop();
    }
  });
});

describe('with a Microsoft app id set (auth on for Teams)', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({ MICROSOFT_APP_ID: '00000000-0000-0000-0000-000000000001', MICROSOFT_APP_PASSWORD: 'not-a-real-secret' });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it('still refuses unauthenticated activities on /api/messages', async () => {
    const response = await running.post('/api/messages', messageActivity({ serviceUrl: 'http://127.0.0.1:9', text: 'hello' }));
    expect(response.status).toBe(401);
  });

  it('answers the playground through its own local endpoint, proactive messages included', async () => {
    const teacher = await directLine(running.url).start(TEACHER);
    await teacher.post({ text: UNCOVERED });
    const notCovered = await teacher.waitFor((a) => /don't cover that/.test(cardText(cardIn(a))), { what: 'not-covered card' });
    await teacher.post({ value: cardIn(notCovered)!.actions[0].data });
    await teacher.waitFor((a) => fromBot(a) && /sent your question/.test(a.text ?? ''), { what: 'escalation confirmation' });
    const coordinator = directLine(running.url).resume('playground-chat-coordinator');
    await coordinator.waitFor((a) => /policies do not answer/.test(cardText(cardIn(a))), { what: 'escalation card' });
  });
});
