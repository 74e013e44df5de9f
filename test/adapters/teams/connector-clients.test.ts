import { CloudAdapter, ConfigurationBotFrameworkAuthentication, type ConversationReference, type TurnContext } from 'botbuilder';
import restify from 'restify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromiseCache, ReusedClientsAuthentication } from '../../../src/adapters/teams/connector-clients.ts';
import { messageActivity } from '../../helpers/activities.ts';
import { startFakeConnector, type FakeConnector } from '../../helpers/fake-connector.ts';

/** A CloudAdapter on the reusing authentication (auth off, as with the Emulator) behind a real restify route. */
async function startBot(auth: ReusedClientsAuthentication) {
  const adapter = new CloudAdapter(auth);
  const clientsSeen: unknown[] = [];
  const errors: unknown[] = [];
  adapter.onTurnError = async (_context, error) => {
    errors.push(error);
  };
  const server = restify.createServer();
  server.use(restify.plugins.bodyParser());
  server.post('/api/messages', async (req: restify.Request, res: restify.Response) => {
    await adapter.process(req as never, res as never, async (context: TurnContext) => {
      clientsSeen.push(context.turnState.get(context.adapter.ConnectorClientKey));
      await context.sendActivity(`echo: ${context.activity.text}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    adapter,
    clientsSeen,
    errors,
    post: (body: unknown) => fetch(`${url}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('ReusedClientsAuthentication', () => {
  let connector: FakeConnector;
  let other: FakeConnector;
  let auth: ReusedClientsAuthentication;
  let bot: Awaited<ReturnType<typeof startBot>>;

  beforeAll(async () => {
    connector = await startFakeConnector();
    other = await startFakeConnector();
    auth = new ReusedClientsAuthentication(
      new ConfigurationBotFrameworkAuthentication({ MicrosoftAppId: '', MicrosoftAppPassword: '', MicrosoftAppType: 'MultiTenant', MicrosoftAppTenantId: '' }),
    );
    bot = await startBot(auth);
  });
  afterAll(async () => {
    await bot.close();
    await connector.close();
    await other.close();
  });

  it('reuses one connector client for every turn replying to the same service URL', async () => {
    const before = connector.activities.length;
    for (const text of ['one', 'two', 'three']) expect((await bot.post(messageActivity({ serviceUrl: connector.url, text }))).status).toBe(200);
    const replies = connector.activities.slice(before).map((captured) => captured.activity.text);
    expect(replies).toEqual(['echo: one', 'echo: two', 'echo: three']);
    expect(new Set(bot.clientsSeen.slice(-3)).size).toBe(1);
    expect(auth.clientCount.userTokens).toBe(1);
  });

  it('gives another service URL its own client', async () => {
    await bot.post(messageActivity({ serviceUrl: other.url, text: 'elsewhere' }));
    expect(other.activities.map((captured) => captured.activity.text)).toEqual(['echo: elsewhere']);
    expect(bot.clientsSeen.at(-1)).not.toBe(bot.clientsSeen.at(-2));
    expect(auth.clientCount.replies).toBe(2);
  });

  it("keeps the client's own retry for a turn's reply: a 429 is sent again after its Retry-After", async () => {
    const before = connector.activities.length;
    connector.failNext(429, 1, { 'retry-after': '0' });
    expect((await bot.post(messageActivity({ serviceUrl: connector.url, text: 'throttled once' }))).status).toBe(200);
    expect(connector.activities.slice(before).map((captured) => captured.activity.text)).toEqual(['echo: throttled once']);
    expect(bot.errors).toEqual([]);
  });

  it('sends proactive messages on a client without retries, so the caller sees the 429 itself, and reuses that client', async () => {
    const reference: Partial<ConversationReference> = {
      channelId: 'emulator',
      serviceUrl: connector.url,
      conversation: { id: 'a:conv-proactive', isGroup: false, conversationType: 'personal', name: '' },
      bot: { id: '28:bot', name: 'esafety-bot' },
      user: { id: '29:teacher', name: '' },
    };
    // Caught inside the turn, as the Teams sender does: the adapter's turn-error handler would swallow it.
    const send = async (text: string) => {
      let refusal: unknown;
      await bot.adapter.continueConversationAsync('', reference, async (context) => {
        await context.sendActivity(text).catch((error: unknown) => (refusal = error));
      });
      if (refusal) throw refusal;
    };
    const before = connector.activities.length;
    connector.failNext(429, 1, { 'retry-after': '0' });
    const refused = await send('first').then(() => undefined, (error: unknown) => error);
    expect((refused as { statusCode?: number } | undefined)?.statusCode).toBe(429);
    await send('second');
    await send('third');
    expect(connector.activities.slice(before).map((captured) => captured.activity.text)).toEqual(['second', 'third']);
    expect(auth.clientCount.proactive).toBe(1);
  });

  it('creates conversations on the same no-retry client: a 429 reaches the caller (the outbox pauses the school)', async () => {
    const parameters = { isGroup: false, bot: { id: '28:bot', name: '' }, members: [{ id: '29:new-person', name: '' }], tenantId: 't1', channelData: { tenant: { id: 't1' } } };
    const create = () => bot.adapter.createConversationAsync('', 'msteams', connector.url, undefined as unknown as string, parameters as never, async () => undefined);
    const before = connector.created.length;
    connector.failNext(429, 1, { 'retry-after': '0' }, 'create');
    const refused = await create().then(() => undefined, (error: unknown) => error);
    expect((refused as { statusCode?: number } | undefined)?.statusCode).toBe(429);
    expect(connector.created.length).toBe(before);
    await create();
    expect(connector.created.length).toBe(before + 1);
    expect(auth.clientCount.proactive).toBe(1);
  });
});

describe('PromiseCache', () => {
  it('makes a value once per key and forgets the oldest beyond its bound', async () => {
    const cache = new PromiseCache<number>(2);
    let made = 0;
    const make = () => Promise.resolve(++made);
    expect(await cache.get('a', make)).toBe(1);
    expect(await cache.get('a', make)).toBe(1);
    await cache.get('b', make);
    await cache.get('c', make);
    expect(cache.size).toBe(2);
    expect(await cache.get('a', make)).toBe(4);
  });

  it('forgets a failed value, so the next call tries again', async () => {
    const cache = new PromiseCache<string>(4);
    await expect(cache.get('k', () => Promise.reject(new Error('no credentials')))).rejects.toThrow('no credentials');
    expect(cache.size).toBe(0);
    expect(await cache.get('k', () => Promise.resolve('ok'))).toBe('ok');
  });
});
