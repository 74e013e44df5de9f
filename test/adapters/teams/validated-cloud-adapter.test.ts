import { ActivityTypes, ConfigurationBotFrameworkAuthentication, type TurnContext } from 'botbuilder';
import restify from 'restify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ValidatedCloudAdapter } from '../../../src/adapters/teams/validated-cloud-adapter.ts';
import { messageActivity } from '../../helpers/activities.ts';
import { startFakeConnector, type FakeConnector } from '../../helpers/fake-connector.ts';

let connector: FakeConnector;
let server: restify.Server;
let url: string;
const seen: Array<{ timestamp: unknown; rawTimestamp: unknown }> = [];

beforeAll(async () => {
  connector = await startFakeConnector();
  const adapter = new ValidatedCloudAdapter(
    new ConfigurationBotFrameworkAuthentication({ MicrosoftAppId: '', MicrosoftAppPassword: '', MicrosoftAppType: 'MultiTenant', MicrosoftAppTenantId: '' }),
  );
  server = restify.createServer();
  server.use(restify.plugins.bodyParser());
  server.post('/api/messages', async (req: restify.Request, res: restify.Response) =>
    adapter.processValidated(req, res, async (context: TurnContext) => {
      const activity = context.activity as typeof context.activity & { rawTimestamp?: unknown };
      seen.push({ timestamp: activity.timestamp, rawTimestamp: activity.rawTimestamp });
      if (activity.type === ActivityTypes.Invoke) await context.sendActivity({ type: ActivityTypes.InvokeResponse, value: { status: 202, body: { accepted: true } } });
      else await context.sendActivity('ok');
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/messages`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await connector.close();
});

const post = (body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

it('hands the turn timestamps as Dates, keeping the text sent, as botbuilder does', async () => {
  const activity = { ...messageActivity({ serviceUrl: connector.url, text: 'hello' }), timestamp: '2026-11-25T08:30:00.000Z' };
  expect((await post(activity)).status).toBe(200);
  const last = seen.at(-1)!;
  expect(last.timestamp).toBeInstanceOf(Date);
  expect((last.timestamp as Date).toISOString()).toBe('2026-11-25T08:30:00.000Z');
  expect(last.rawTimestamp).toBe('2026-11-25T08:30:00.000Z');
});

it("answers an invoke with the turn's invoke response: its status and body", async () => {
  const { text: _text, ...base } = messageActivity({ serviceUrl: connector.url });
  const response = await post({ ...base, type: 'invoke', name: 'adaptiveCard/action', value: {} });
  expect(response.status).toBe(202);
  expect(await response.json()).toEqual({ accepted: true });
});
