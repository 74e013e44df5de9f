/**
 * The browser playground: GET / serves a page running Microsoft's Bot Framework Web Chat (from the
 * installed botframework-webchat package, nothing from a CDN) against the loopback Direct Line
 * bridge, which feeds the bot through the Teams adapter. On outside production unless
 * PLAYGROUND_ENABLED says otherwise; answers only this machine unless PLAYGROUND_PUBLIC=true.
 *
 * With no MICROSOFT_APP_ID (auth off), the bridge posts to /api/messages itself, exactly as Teams
 * does. With an app id, /api/messages only takes tokens signed by Microsoft, which nothing local can
 * mint; the playground then gets its own CloudAdapter with auth off (same logic, cards and sender:
 * createTeamsChannel), reachable at POST /playground/api/messages from this machine only, and
 * proactive messages to playground people go through it, so nothing asks Azure for a token.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import restify, { type Request, type Response, type Server } from 'restify';
import type { Bot } from '../../bot/bot.ts';
import type { Directory } from '../../bot/directory.ts';
import type { PlatformSender } from '../../bot/notifier.ts';
import type { Settings } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import { MAX_BODY_BYTES } from '../../server.ts';
import { createTeamsChannel, validateActivity, type TeamsChannel } from '../teams/teams-adapter.ts';
import { BOT_ACCOUNT, ConversationBook, mountBridge, PLAYGROUND_CHANNEL, userAccount } from './bridge.ts';
import { conversationIdOf, playgroundIdentities } from './identities.ts';
import { notLocalReason } from './local-only.ts';
import { renderPage } from './page/render.ts';

const pageDir = fileURLToPath(new URL('./page/', import.meta.url));

export interface Playground {
  /** Sends proactive messages to playground people (register for platform 'playground'). */
  send: PlatformSender;
  /** Outside production: the demo people exist in the default school with their roles. */
  prepare(): Promise<void>;
  /** Adds the playground's routes to the server. */
  mount(server: Server): void;
  /** Where the bridge posts activities: /api/messages, or the playground's own endpoint when auth is on. */
  botPath: string;
  book: ConversationBook;
}

export interface PlaygroundOptions {
  settings: Settings;
  log: Logger;
  bot: Bot;
  directory: Directory;
  /** The Teams channel, when /api/messages is served. */
  teams?: TeamsChannel;
}

/** The conversation reference the Teams adapter stores for a playground person (same shape, same key order). */
function referenceFor(identity: (typeof playgroundIdentities)[number], baseUrl: string): Record<string, unknown> {
  return {
    user: userAccount(identity),
    bot: { ...BOT_ACCOUNT },
    conversation: { id: conversationIdOf(identity), conversationType: 'personal' },
    channelId: PLAYGROUND_CHANNEL,
    locale: 'en-GB',
    serviceUrl: baseUrl,
  };
}

export function createPlayground(options: PlaygroundOptions): Playground {
  const { settings, log, bot, directory } = options;
  const school = settings.defaultSchool.id;
  const viaTeamsEndpoint = Boolean(options.teams) && !settings.teams.appId;
  const channel: TeamsChannel = viaTeamsEndpoint
    ? options.teams!
    : createTeamsChannel({ settings: { ...settings, teams: { ...settings.teams, enabled: true, appId: undefined, appPassword: undefined } }, bot, log });
  const botPath = viaTeamsEndpoint ? '/api/messages' : '/playground/api/messages';
  const book = new ConversationBook();

  const guard = (req: Request, res: Response, next: (err?: unknown) => void) => {
    if (settings.playground.public) return next();
    const reason = notLocalReason(req);
    if (!reason) return next();
    log.warn({ path: req.path(), reason }, 'playground request refused: not from this machine');
    res.status(403);
    res.json({ error: { code: 'forbidden', message: `The playground answers only requests made on this machine (${reason}). Set PLAYGROUND_PUBLIC=true to open it to others; see docs/playground.md.` } });
    next(false);
  };

  // The demo people are reachable (as if the app were installed for them) at the address the page
  // used, so an escalation reaches the coordinator before they have typed anything.
  const reachable = new Set<string>();
  const makeReachable = async (baseUrl: string) => {
    if (settings.production || reachable.has(baseUrl)) return;
    reachable.add(baseUrl);
    try {
      for (const identity of playgroundIdentities) {
        await directory.noteUserSeen(school, { id: identity.userId, platform: 'playground', name: identity.name, reference: referenceFor(identity, baseUrl) });
      }
    } catch (error) {
      reachable.delete(baseUrl);
      log.warn({ err: { name: (error as Error).name } }, 'playground: demo people not made reachable');
    }
  };

  let webChatBundle: Promise<Buffer> | undefined;
  const webChat = () => (webChatBundle ??= readFile(webChatBundlePath()).catch((error) => {
    webChatBundle = undefined;
    throw error;
  }));

  const sendFile = (res: Response, body: string | Buffer, type: string, cache: string) => {
    res.setHeader('content-type', type);
    res.setHeader('cache-control', cache);
    res.sendRaw(200, body);
  };

  return {
    send: channel.send,
    botPath,
    book,
    prepare: async () => {
      if (settings.production) return;
      for (const identity of playgroundIdentities) {
        await directory.noteUserSeen(school, { id: identity.userId, platform: 'playground', name: identity.name });
        for (const role of identity.roles) await directory.grantRole(school, identity.userId, role);
      }
    },
    mount: (server) => {
      server.get('/', guard, async (_req: Request, res: Response) => {
        res.setHeader('content-security-policy', [
          "default-src 'self'",
          "script-src 'self'",
          // Web Chat styles itself with inline <style> elements (emotion).
          "style-src 'self' 'unsafe-inline'",
          "img-src 'self' data: blob:",
          "media-src 'self' data: blob:",
          "font-src 'self' data:",
          "connect-src 'self'",
          "object-src 'none'",
          "base-uri 'none'",
          "frame-ancestors 'none'",
          "form-action 'none'",
        ].join('; '));
        res.setHeader('referrer-policy', 'no-referrer');
        sendFile(res, renderPage({ identities: playgroundIdentities, schoolName: settings.defaultSchool.name }), 'text/html; charset=utf-8', 'no-store');
      });
      server.get('/playground/webchat.js', guard, async (_req: Request, res: Response) => {
        sendFile(res, await webChat(), 'text/javascript; charset=utf-8', 'public, max-age=3600');
      });
      for (const [file, type] of [['playground.js', 'text/javascript; charset=utf-8'], ['playground.css', 'text/css; charset=utf-8']] as const) {
        server.get(`/playground/${file}`, guard, async (_req: Request, res: Response) => {
          sendFile(res, await readFile(path.join(pageDir, file)), type, 'no-cache');
        });
      }

      mountBridge(server, { log, book, botPath, guard, onBaseUrl: makeReachable });

      if (!viaTeamsEndpoint) {
        // The playground's own, unauthenticated, Teams endpoint: only from this machine, even with PLAYGROUND_PUBLIC.
        const localOnly = (req: Request, res: Response, next: (err?: unknown) => void) => {
          const reason = notLocalReason(req);
          if (!reason) return next();
          res.status(403);
          res.json({ error: { code: 'forbidden', message: `Only the playground's bridge on this machine may post here (${reason}).` } });
          next(false);
        };
        server.post(
          '/playground/api/messages',
          localOnly,
          restify.plugins.bodyParser({ maxBodySize: MAX_BODY_BYTES, mapParams: false, rejectUnknown: true }),
          async (req: Request, res: Response) => {
            const problem = validateActivity(req.body);
            if (problem) {
              res.status(400);
              res.json({ error: { code: 'bad_request', message: problem } });
              return;
            }
            await channel.process(req, res);
          },
        );
      }
    },
  };
}

/** Web Chat's prebuilt browser bundle in the installed package (its exports map hides dist/, so resolve the package and go from there). */
export function webChatBundlePath(): string {
  const entry = createRequire(import.meta.url).resolve('botframework-webchat');
  let dir = path.dirname(entry);
  while (path.basename(dir) !== 'botframework-webchat' && dir !== path.dirname(dir)) dir = path.dirname(dir);
  return path.join(dir, 'dist', 'webchat.js');
}
