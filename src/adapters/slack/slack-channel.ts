/**
 * Slack through Bolt, mounted on the same restify server: Bolt's HTTPReceiver verifies request
 * signatures (with the 5-minute window) and answers the url_verification handshake. Messages in
 * direct messages go to the core; replies are rendered for Slack.
 */
import { randomUUID } from 'node:crypto';
// Named imports, not the default one: Node gives a CommonJS module's exports object as the default,
// but vitest (and other bundler-style loaders) give its `default` export, the App class alone.
import { App, HTTPReceiver, LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import type { Bot } from '../../bot/bot.ts';
import type { Inbound } from '../../bot/inbound.ts';
import type { Reply } from '../../bot/reply.ts';
import type { Settings } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import { renderReplyAsText } from '../terminal/render.ts';

export interface SlackChannel {
  requestListener: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
}

/** Until the Block Kit renderer lands, cards go to Slack as their plain-text rendering. */
function toSlackText(replies: Reply[]): string[] {
  return replies.map((reply) => renderReplyAsText(reply).text);
}

export function createSlackChannel(options: { settings: NonNullable<Settings['slack']>; bot: Bot; log: Logger }): SlackChannel {
  const { settings, bot, log } = options;
  // Bolt logs through pino like everything else (its default console logger would put plain-text lines
  // among the JSON ones). Its info lines are lifecycle chatter, so they go to debug.
  const boltLog = log.child({ component: 'slack' });
  const logger: BoltLogger = {
    debug: (...parts: unknown[]) => boltLog.debug(parts.map(String).join(' ')),
    info: (...parts: unknown[]) => boltLog.debug(parts.map(String).join(' ')),
    warn: (...parts: unknown[]) => boltLog.warn(parts.map(String).join(' ')),
    error: (...parts: unknown[]) => boltLog.error(parts.map(String).join(' ')),
    setLevel: () => undefined,
    getLevel: () => LogLevel.DEBUG,
    setName: () => undefined,
  };
  const receiver = new HTTPReceiver({
    signingSecret: settings.signingSecret,
    endpoints: '/slack/events',
    logger,
    // The same limit as the server's for /api/messages (server.ts MAX_BODY_BYTES), also for chunked bodies.
    bodyLimit: 256 * 1024,
    processBeforeResponse: false,
    unhandledRequestHandler: ({ logger }) => logger.debug('slack request not acknowledged in time'),
  });
  const app = new App({
    receiver,
    logger,
    // One school, one token; without a token Bolt still verifies and answers, it just cannot post.
    authorize: async () => ({ botToken: settings.botToken }),
    clientOptions: settings.apiUrl ? { slackApiUrl: settings.apiUrl } : undefined,
  });

  app.message(async ({ message, say, context }) => {
    if (message.subtype !== undefined || !('user' in message) || !message.user) return;
    const inbound: Inbound = {
      platform: 'slack',
      tenantId: context.teamId,
      user: { id: message.user },
      conversation: { id: message.channel, kind: message.channel_type === 'im' ? 'personal' : message.channel_type === 'channel' ? 'channel' : 'group' },
      text: 'text' in message ? (message.text ?? '') : '',
      reference: message.channel_type === 'im' ? { channel: message.channel, teamId: context.teamId } : undefined,
      correlationId: randomUUID(),
    };
    const replies = await bot.handle(inbound);
    for (const line of toSlackText(replies)) await say({ text: line });
  });
  app.error(async (error) => {
    log.error({ code: (error as { code?: string }).code }, 'slack handler failed');
  });

  return { requestListener: receiver.requestListener.bind(receiver) as SlackChannel['requestListener'] };
}
