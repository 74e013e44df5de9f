/**
 * Target (b): the smallest botbuilder bot on the same stack: restify + bodyParser + CloudAdapter
 * with no app id (auth off, as in the esafety-bot target), whose logic echoes the text back.
 */
import '../lib/loopback-guard.ts';
import { CloudAdapter, ConfigurationBotFrameworkAuthentication, type TurnContext } from 'botbuilder';
import restify from 'restify';
import { serveTarget } from './protocol.ts';

let turnErrors = 0;
const adapter = new CloudAdapter(
  new ConfigurationBotFrameworkAuthentication({ MicrosoftAppId: '', MicrosoftAppPassword: '', MicrosoftAppType: 'MultiTenant', MicrosoftAppTenantId: '' }),
);
adapter.onTurnError = async (_context, error) => {
  turnErrors++;
  if (turnErrors <= 3) console.error('echo turn failed:', error);
};

const logic = async (context: TurnContext) => {
  await context.sendActivity(context.activity.text);
};

const server = restify.createServer({ name: 'echo-bot', handleUncaughtExceptions: false });
server.use(restify.plugins.bodyParser());
server.post('/api/messages', async (req: restify.Request, res: restify.Response) => {
  await adapter.process(req as never, res as never, logic);
});

server.listen(0, '127.0.0.1', () => {
  serveTarget(
    (server.address() as { port: number }).port,
    () => new Promise<void>((resolve) => { server.close(() => resolve()); server.server.closeAllConnections?.(); }),
    () => ({ turnErrors }),
  );
});
