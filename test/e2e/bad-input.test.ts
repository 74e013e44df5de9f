/**
 * Issue 2, "Bad input": whatever arrives at /api/messages gets a 4xx with a JSON error that says
 * what is wrong (never a 500 or a crash), unhandled Activity types do nothing, and an error inside a
 * turn reaches the user as an apology whose reference is also in the error log line.
 */
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';
import { memoryLog, type MemoryLog } from '../helpers/memory-log.ts';

let running: RunningApp;
let connector: FakeConnector;
let logs: MemoryLog;
/** While set, the store's point reads of conversation state throw: a real failure inside a turn. */
let failConversationReads = false;

beforeAll(async () => {
  connector = await startFakeConnector();
  logs = memoryLog('info');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-bad-input-'));
  const inner = createSqliteStore({ file: path.join(dataDir, 'esafety.sqlite') });
  const store: Store = {
    ...inner,
    get: async (key) => {
      if (failConversationReads && key.kind === 'conversation') throw new Error('disk on fire (simulated)');
      return inner.get(key);
    },
  };
  running = await startApp({ LOG_LEVEL: 'info' }, { store, log: logs.log, dataDir });
});
afterAll(async () => {
  await running.stop();
  await connector.close();
});

async function expectClientError(response: Response, status: number, messagePattern: RegExp): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
  expect(body.error?.code).toEqual(expect.any(String));
  expect(body.error?.message).toMatch(messagePattern);
}

/** The server still answers a normal message after whatever came before. */
async function expectStillServing(): Promise<void> {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'whoami', userId: 'still-here' }));
  expect(response.status).toBe(200);
  const [reply] = (await connector.waitFor(before + 1)).slice(before);
  expect(cardText(cardOf(reply!.activity))).toContain('User id: still-here');
}

/** Sends raw bytes with exactly the headers given (fetch would fix up Content-Length and framing). */
function rawPost(url: string, headers: Record<string, string | number>, chunks: Array<string | Buffer>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/messages`, { method: 'POST', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    // The server may answer and close before the whole body is written; that is the point.
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('bad requests to /api/messages', () => {
  it('malformed JSON is a 400 saying the body is not valid JSON', async () => {
    await expectClientError(await running.post('/api/messages', '{"type": "message", "text": '), 400, /not valid JSON/i);
    await expectStillServing();
  });

  it('a text/plain body is a 415 naming the content type it needs', async () => {
    await expectClientError(await running.post('/api/messages', JSON.stringify(messageActivity({ serviceUrl: connector.url, text: 'hi' })), { 'content-type': 'text/plain' }), 415, /application\/json.*text\/plain/);
    await expectStillServing();
  });

  it('a body with no content type is a 415', async () => {
    const response = await rawPost(running.url, { 'content-length': 2 }, ['{}']);
    expect(response.status).toBe(415);
    expect(JSON.parse(response.body).error.message).toMatch(/application\/json.*none/);
    await expectStillServing();
  });

  it('a body over 256 KB is a 413 without being read', async () => {
    const big = JSON.stringify(messageActivity({ serviceUrl: connector.url, text: 'x'.repeat(300 * 1024) }));
    await expectClientError(await running.post('/api/messages', big), 413, /larger than 262144 bytes/);
    await expectStillServing();
  });

  it('a chunked body that does not declare its length is cut off at 256 KB with a 413', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    const response = await rawPost(running.url, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, ['{"type":"message","text":"', ...Array.from({ length: 6 }, () => chunk), '"}']);
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).error).toMatchObject({ code: 'payload_too_large' });
    await expectStillServing();
  });

  it('a Content-Length that understates the body is a JSON 400 and the connection is closed', async () => {
    // The declared bytes are a truncated JSON body; the rest reads as a garbled second request.
    const body = JSON.stringify(messageActivity({ serviceUrl: connector.url, text: 'hello there' }));
    const response = await rawPost(running.url, { 'content-type': 'application/json', 'content-length': 20 }, [body]);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).error).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/Malformed HTTP request/) });
    await expectStillServing();
  });

  it('a message Activity without a conversation is a 400 naming conversation', async () => {
    const { conversation: _omit, ...activity } = messageActivity({ serviceUrl: connector.url, text: 'hello' });
    await expectClientError(await running.post('/api/messages', activity), 400, /conversation is required/);
    await expectStillServing();
  });

  it('a message Activity without a sender is a 400 naming from', async () => {
    const { from: _omit, ...activity } = messageActivity({ serviceUrl: connector.url, text: 'hello' });
    await expectClientError(await running.post('/api/messages', activity), 400, /from \(the sender\) is required/);
    await expectStillServing();
  });

  it('an Activity whose serviceUrl is not a URL is a 400 naming serviceUrl', async () => {
    await expectClientError(await running.post('/api/messages', messageActivity({ serviceUrl: 'not a url', text: 'hello' })), 400, /serviceUrl must be a URL/);
    await expectStillServing();
  });

  it('an array body is a 400 saying it is not an Activity', async () => {
    await expectClientError(await running.post('/api/messages', [messageActivity({ serviceUrl: connector.url, text: 'hello' })]), 400, /Not a Bot Framework Activity.*object/);
    await expectStillServing();
  });

  it('an Activity without a type is a 400 naming type', async () => {
    const { type: _omit, ...activity } = messageActivity({ serviceUrl: connector.url, text: 'hello' });
    await expectClientError(await running.post('/api/messages', activity), 400, /type/);
    await expectStillServing();
  });

  it('an Activity whose serviceUrl is not http(s) is a 400 (the reply could not be delivered)', async () => {
    await expectClientError(await running.post('/api/messages', messageActivity({ serviceUrl: 'ftp://127.0.0.1/', text: 'hello' })), 400, /serviceUrl must be an http\(s\) URL/);
  });

  it('a message Activity without a serviceUrl is a 400 saying it is required', async () => {
    const { serviceUrl: _omit, ...activity } = messageActivity({ serviceUrl: connector.url, text: 'hello' });
    await expectClientError(await running.post('/api/messages', activity), 400, /serviceUrl is required/);
  });

  it('a message whose text is not a string is a 400 naming text, not a failed turn', async () => {
    await expectClientError(await running.post('/api/messages', { ...messageActivity({ serviceUrl: connector.url }), text: { nested: true } }), 400, /needs text/);
    await expectStillServing();
  });

  it('fields a reply copies back (locale, conversation.tenantId) with the wrong type are a 400, not a silently lost reply', async () => {
    await expectClientError(await running.post('/api/messages', { ...messageActivity({ serviceUrl: connector.url, text: 'hi' }), locale: 5 }), 400, /locale/);
    const activity = messageActivity({ serviceUrl: connector.url, text: 'hi' });
    await expectClientError(await running.post('/api/messages', { ...activity, conversation: { id: 'c-1', tenantId: 5 } }), 400, /conversation\.tenantId/);
    await expectStillServing();
  });

  it('a message with a malformed mention entity and no recipient is still answered', async () => {
    const before = connector.activities.length;
    const { recipient: _omit, ...activity } = messageActivity({ serviceUrl: connector.url, text: 'whoami', userId: 'odd-client' });
    await running.post('/api/messages', { ...activity, entities: [{ type: 'mention', mentioned: null, text: '<at>bot</at>' }] });
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    expect(cardText(cardOf(reply!.activity))).toContain('User id: odd-client');
  });
});

describe('Activity types the bot does not handle', () => {
  const base = () => messageActivity({ serviceUrl: connector.url, userId: 'quiet-user' });
  const cases: Array<[string, Record<string, unknown>]> = [
    ['conversationUpdate', { type: 'conversationUpdate', membersAdded: [{ id: '28:bot' }] }],
    ['typing', { type: 'typing' }],
    ['messageReaction', { type: 'messageReaction', reactionsAdded: [{ type: 'like' }], replyToId: 'x' }],
    ['installationUpdate', { type: 'installationUpdate', action: 'add' }],
    ['an unknown invoke', { type: 'invoke', name: 'some/unknownInvoke', value: {} }],
  ];
  for (const [name, fields] of cases) {
    it(`${name} is accepted and sends nothing`, async () => {
      const before = connector.activities.length;
      const { text: _text, ...activity } = { ...base(), ...fields };
      const response = await running.post('/api/messages', activity);
      expect(response.status).toBe(200);
      // A message afterwards is the first thing the connector receives: nothing was sent in between.
      await expectStillServing();
      expect(connector.activities.length).toBe(before + 1);
    });
  }
});

describe('turns that cannot be served as asked', () => {
  it('a message over 4,000 characters gets a clear reply naming the limit', async () => {
    const before = connector.activities.length;
    const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'a'.repeat(4001) }));
    expect(response.status).toBe(200);
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    expect(reply!.activity.text).toMatch(/too long for me \(4001 characters; the limit is 4000\)/);
  });

  it('a card submission naming an unknown route gets a clear reply', async () => {
    const before = connector.activities.length;
    await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, value: { route: 'no.such.route', questionId: 'x' } }));
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    expect(reply!.activity.text).toMatch(/didn't recognise that button or form/);
  });

  it('a card submission with data its route cannot use gets a clear reply, not an apology', async () => {
    const before = connector.activities.length;
    const linesBefore = logs.raw().length;
    await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, value: { route: 'qa.feedback', questionId: 5 } }));
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    expect(reply!.activity.text).toMatch(/That button or form sent something I can't use/);
    const written = logs.lines().slice(linesBefore);
    expect(written.filter((line) => line.level >= 50)).toEqual([]);
    expect(written).toContainEqual(expect.objectContaining({ msg: 'input refused', route: 'qa.feedback', fields: ['questionId', 'helpful'] }));
  });

  it('an error inside a turn sends an apology with a reference that is also in the error log line, and logs no message text', async () => {
    const marker = `zebra-${Math.random().toString(36).slice(2)}-marker`;
    const before = connector.activities.length;
    const linesBefore = logs.raw().length;
    failConversationReads = true;
    try {
      const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: `can I use ${marker} in class?`, userId: 'unlucky' }));
      expect(response.status).toBe(200);
      const [reply] = (await connector.waitFor(before + 1)).slice(before);
      const reference = /reference ([0-9a-f-]{36})/.exec(reply!.activity.text)?.[1];
      expect(reply!.activity.text).toMatch(/^Sorry, something went wrong/);
      expect(reference).toBeDefined();
      const errors = logs.lines().slice(linesBefore).filter((line) => line.level >= 50);
      expect(errors.length).toBeGreaterThan(0);
      const errorLine = errors.find((line) => line.correlationId === reference);
      expect(errorLine).toBeDefined();
      // Where it failed (the wrapped store's get, in this file), not the wrapper that caught it.
      expect(errorLine!.stack).toMatch(/^\s+at .*bad-input\.test\.ts/);
      expect(errorLine!.name).toBe('Error');
    } finally {
      failConversationReads = false;
    }
    // The next turn works again, and a normal question with the marker is answered too.
    await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: `phones in class ${marker}`, userId: 'unlucky' }));
    await connector.waitFor(before + 2);
    const written = logs.raw().slice(linesBefore);
    expect(written.length).toBeGreaterThan(0);
    for (const line of written) expect(line).not.toContain(marker);
    // Nor the failing error's message: only its name and stack frames.
    for (const line of written) expect(line).not.toContain('disk on fire');
  });
});

describe('health', () => {
  it('/healthz answers 200 {status: ok}', async () => {
    const response = await fetch(`${running.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 on the SQLite store', async () => {
    const response = await fetch(`${running.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('an unknown path is a JSON 404', async () => {
    const response = await fetch(`${running.url}/nope`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});


describe('a bot with Bot Framework credentials', () => {
  it('refuses a request without a token with a JSON 401 that says what to fix, logs why, and runs no turn', async () => {
    const securedLogs = memoryLog('info');
    const secured = await startApp({ MICROSOFT_APP_ID: '00000000-0000-0000-0000-0000000000b0', MICROSOFT_APP_PASSWORD: 'not-a-real-secret', LOG_LEVEL: 'info' }, { log: securedLogs.log });
    try {
      const before = connector.activities.length;
      const response = await secured.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'can kids use phones in class', userId: 'no-token' }));
      await expectClientError(response, 401, /no valid Bot Framework token.*Emulator the same app id and password/);
      expect(connector.activities.length).toBe(before);
      expect(await secured.app.store.list('question', 'default')).toEqual([]);
      expect(await secured.app.store.list('conversation', 'default')).toEqual([]);
      // The admin finds botbuilder's reason in the log; the message's text is not there.
      expect(securedLogs.lines()).toContainEqual(expect.objectContaining({ level: 40, code: 'unauthorized', reason: expect.stringMatching(/\S/), msg: 'request refused' }));
      expect(securedLogs.raw().join('\n')).not.toContain('phones in class');
    } finally {
      await secured.stop();
    }
  });
});
