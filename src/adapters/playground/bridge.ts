/**
 * A loopback Direct Line bridge: the part of Direct Line 3.0 that Web Chat needs, and the part of
 * the Bot Connector API that botbuilder calls to reply, on the bot's own server.
 *
 *   page ──POST /v3/directline/conversations/:id/activities──▶ bridge ──POST /api/messages──▶ CloudAdapter
 *   page ◀──GET  /v3/directline/conversations/:id/activities── bridge ◀──POST /v3/conversations/:id/activities── botbuilder
 *
 * Each user activity is echoed into its conversation, then posted over real loopback HTTP to the
 * bot's Teams endpoint with `channelId: 'playground'` and `serviceUrl` = this server, so the bot
 * answers exactly as it answers Teams: through the same adapter, the same cards, the same connector
 * calls. Proactive messages (continueConversation with a stored reference) arrive the same way.
 *
 * Conversations live in memory, one per demo identity (conversation ids name the identity), so a
 * page left open across a restart carries on: its next poll finds the conversation re-created, and
 * watermarks carry the server instance (`epoch`) they belong to, so a watermark from before the
 * restart reads the new instance's activities from the start instead of skipping them.
 */
import { randomBytes } from 'node:crypto';
import restify, { type Request, type Response, type Server } from 'restify';
import { z } from 'zod';
import type { Logger } from '../../logger.ts';
import { MAX_BODY_BYTES } from '../../server.ts';
import { conversationIdOf, identityByConversationId, identityByUserId, playgroundIdentities, type PlaygroundIdentity } from './identities.ts';

type Json = Record<string, any>;
type Next = (err?: unknown) => void;
type Middleware = (req: Request, res: Response, next: Next) => void;

/** The bot as the page sees it (and as the bridge's activities name it). */
export const BOT_ACCOUNT = { id: 'esafety-bot', name: 'esafety-bot', role: 'bot' } as const;
/** Messages the bridge itself writes into a chat (bad input, an unreachable bot). */
const BRIDGE_ACCOUNT = { id: 'playground', name: 'Playground', role: 'bot' } as const;
export const PLAYGROUND_CHANNEL = 'playground';

/** Activities kept per conversation; older ones are dropped (a page that reloads sees the latest). */
const MAX_ACTIVITIES = 500;
/** Client activity ids remembered per conversation, to recognise a replayed post. */
const MAX_REMEMBERED_POSTS = 1000;

export interface Conversation {
  id: string;
  identity: PlaygroundIdentity;
  activities: Json[];
  /** How many activities were dropped from the front (so sequence numbers stay stable). */
  dropped: number;
  /** clientActivityID (or client-set id) → the id this bridge gave the activity. */
  posts: Map<string, string>;
}

/** The in-memory conversations, one per identity, and their activity lists. */
export class ConversationBook {
  /** This server instance; watermarks and activity ids carry it. */
  readonly epoch = randomBytes(4).toString('hex');
  readonly #conversations = new Map<string, Conversation>();

  /** The identity's conversation, created (or re-created after a restart) on first use. */
  forIdentity(identity: PlaygroundIdentity): Conversation {
    return this.get(conversationIdOf(identity))!;
  }

  /** Undefined when the id names no playground conversation. */
  get(conversationId: string): Conversation | undefined {
    const existing = this.#conversations.get(conversationId);
    if (existing) return existing;
    const identity = identityByConversationId(conversationId);
    if (!identity) return undefined;
    const created: Conversation = { id: conversationId, identity, activities: [], dropped: 0, posts: new Map() };
    this.#conversations.set(conversationId, created);
    return created;
  }

  /** Appends (giving the activity an id and a timestamp when it has none); returns the id. */
  append(conversation: Conversation, activity: Json): string {
    const sequence = conversation.dropped + conversation.activities.length + 1;
    const id = typeof activity.id === 'string' && activity.id ? activity.id : `${this.epoch}-${sequence}`;
    conversation.activities.push({ ...activity, id, timestamp: activity.timestamp ?? new Date().toISOString(), conversation: { id: conversation.id } });
    const excess = conversation.activities.length - MAX_ACTIVITIES;
    if (excess > 0) {
      conversation.activities.splice(0, excess);
      conversation.dropped += excess;
    }
    return id;
  }

  /** Replaces an activity (botbuilder's updateActivity): re-appended with the same id, so a poller sees the new version. */
  update(conversation: Conversation, activityId: string, activity: Json): boolean {
    const index = conversation.activities.findIndex((a) => a.id === activityId);
    if (index < 0) return false;
    const [previous] = conversation.activities.splice(index, 1);
    conversation.dropped += 1;
    this.append(conversation, { ...previous, ...activity, id: activityId, timestamp: previous!.timestamp });
    return true;
  }

  watermarkOf(conversation: Conversation): string {
    return `${this.epoch}-${conversation.dropped + conversation.activities.length}`;
  }

  /** Activities after the watermark. A watermark of another server instance (before a restart), or none, reads from the start. */
  since(conversation: Conversation, watermark: string | undefined): { activities: Json[]; watermark: string } {
    const match = /^([0-9a-f]+)-(\d+)$/.exec(watermark ?? '');
    const seen = match && match[1] === this.epoch ? Number(match[2]) : 0;
    const from = Math.max(0, seen - conversation.dropped);
    return { activities: conversation.activities.slice(from), watermark: this.watermarkOf(conversation) };
  }

  rememberPost(conversation: Conversation, clientId: string, id: string): void {
    conversation.posts.set(clientId, id);
    if (conversation.posts.size > MAX_REMEMBERED_POSTS) conversation.posts.delete(conversation.posts.keys().next().value!);
  }
}

export interface BridgeOptions {
  log: Logger;
  book: ConversationBook;
  /** The path on this server that takes an Activity: /api/messages (Teams) or the playground's own. */
  botPath: string;
  /** Refuses requests that are not allowed to use the playground (not from this machine). */
  guard: Middleware;
  /** Called with the bridge's base URL whenever a conversation starts (the demo people become reachable there). */
  onBaseUrl?: (baseUrl: string) => Promise<void>;
}

/** The base URL this server was reached on, as the server itself can reach it again (never a public name). */
export function baseUrlOf(req: Request): string {
  const address = (req.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/i, '');
  return `http://${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort}`;
}

function sendError(res: Response, status: number, code: string, message: string): void {
  if (res.headersSent) return;
  res.status(status);
  res.json({ error: { code, message } });
}

/** JSON bodies only, at most MAX_BODY_BYTES, parsed without mapping into params. */
const jsonBody: Middleware[] = [
  (req, res, next) => {
    const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      sendError(res, 415, 'unsupported_media_type', `Content-Type must be application/json (got "${type || 'none'}")`);
      return next(false);
    }
    next();
  },
  restify.plugins.bodyParser({ maxBodySize: MAX_BODY_BYTES, mapParams: false, rejectUnknown: true }) as unknown as Middleware,
];

const postedActivitySchema = z.looseObject({
  type: z.string().min(1).max(100),
  id: z.string().max(200).optional(),
  text: z.string().optional(),
  locale: z.string().max(50).optional(),
  textFormat: z.string().max(20).optional(),
  name: z.string().max(200).optional(),
  channelData: z.looseObject({ clientActivityID: z.string().max(200).optional() }).optional(),
});

/** Why a card submission cannot be used (it names no action), or undefined when it looks like one. */
export function malformedSubmission(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return 'it is not a form';
  const route = (value as Json).route;
  if (typeof route !== 'string' || route.trim() === '') return 'it names no action';
  if (route.length > 100) return 'its action name is too long';
  return undefined;
}

export function mountBridge(server: Server, options: BridgeOptions): void {
  const { book, guard, log, botPath } = options;

  const notice = (conversation: Conversation, text: string, replyToId?: string) =>
    book.append(conversation, { type: 'message', channelId: PLAYGROUND_CHANNEL, from: BRIDGE_ACCOUNT, recipient: userAccount(conversation.identity), text, textFormat: 'plain', replyToId });

  const conversationOr404 = (req: Request, res: Response): Conversation | undefined => {
    const conversation = book.get(String(req.params.conversationId ?? ''));
    if (!conversation) sendError(res, 404, 'not_found', 'No such playground conversation');
    return conversation;
  };

  const started = (req: Request, res: Response, conversation: Conversation, status: number) => {
    res.status(status);
    res.json({ conversationId: conversation.id, expires_in: 3600, user: userAccount(conversation.identity) });
  };

  // ── Direct Line 3.0 (what Web Chat's client calls) ─────────────────────────────────────────────

  // Start a conversation. The body names the user (Direct Line's `user.id`); it must be a demo identity.
  server.post('/v3/directline/conversations', guard, async (req: Request, res: Response) => {
    const body = await readOptionalJson(req);
    if (body === TOO_LARGE) return sendError(res, 413, 'payload_too_large', 'The body is too large');
    if (body === INVALID) return sendError(res, 400, 'bad_request', 'The body is not valid JSON');
    const userId = (body as Json | undefined)?.user?.id;
    const identity = userId === undefined || userId === null ? playgroundIdentities[0]! : identityByUserId(String(userId));
    if (!identity) return sendError(res, 400, 'bad_request', `user.id must be one of the playground's people: ${playgroundIdentities.map((i) => i.userId).join(', ')}`);
    await options.onBaseUrl?.(baseUrlOf(req));
    started(req, res, book.forIdentity(identity), 201);
  });

  // Reconnect (DirectLineJS calls this with a known conversation id; also after a server restart).
  server.get('/v3/directline/conversations/:conversationId', guard, async (req: Request, res: Response) => {
    const conversation = conversationOr404(req, res);
    if (!conversation) return;
    await options.onBaseUrl?.(baseUrlOf(req));
    started(req, res, conversation, 200);
  });

  // Tokens are not used (the playground's protection is that it answers this machine only); DirectLineJS refreshes anyway.
  server.post('/v3/directline/tokens/refresh', guard, async (_req: Request, res: Response) => {
    res.json({ expires_in: 3600 });
  });

  server.get('/v3/directline/conversations/:conversationId/activities', guard, async (req: Request, res: Response) => {
    const conversation = conversationOr404(req, res);
    if (!conversation) return;
    const watermark = new URL(req.url ?? '/', 'http://localhost').searchParams.get('watermark') ?? undefined;
    res.setHeader('cache-control', 'no-store');
    res.json(book.since(conversation, watermark));
  });

  server.post('/v3/directline/conversations/:conversationId/activities', guard, ...jsonBody, async (req: Request, res: Response) => {
    const conversation = conversationOr404(req, res);
    if (!conversation) return;
    const parsed = postedActivitySchema.safeParse(req.body);
    if (!parsed.success) {
      return sendError(res, 400, 'bad_request', `Not an activity: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    }
    const posted = parsed.data as Json;
    const identity = conversation.identity;
    const clientId: string | undefined = posted.channelData?.clientActivityID ?? posted.id;

    // The same post again (a retry, or a replayed request): nothing is done twice.
    const earlier = clientId ? conversation.posts.get(clientId) : undefined;
    if (earlier) {
      log.info({ conversation: conversation.id }, 'playground: replayed post ignored');
      if (posted.type === 'message') {
        notice(conversation, posted.value !== undefined
          ? 'That form was already sent, so it was not sent again and nothing was done twice.'
          : 'That message was already sent, so it was not sent again.', earlier);
      }
      res.json({ id: earlier });
      return;
    }
    // Typing indicators are not kept or forwarded.
    if (posted.type === 'typing') {
      res.json({ id: `${book.epoch}-typing` });
      return;
    }

    // The user's own activity, as the page will see it echoed back: the sender is always the
    // conversation's identity, whatever the page put in `from`.
    const echo: Json = {
      type: posted.type,
      channelId: PLAYGROUND_CHANNEL,
      from: userAccount(identity),
      recipient: BOT_ACCOUNT,
      ...(posted.text !== undefined ? { text: posted.text } : {}),
      ...(posted.value !== undefined ? { value: posted.value } : {}),
      ...(posted.name !== undefined ? { name: posted.name } : {}),
      ...(posted.locale ? { locale: posted.locale } : {}),
      textFormat: posted.textFormat ?? 'plain',
      channelData: { ...(clientId ? { clientActivityID: clientId } : {}), ...(posted.channelData?.postBack ? { postBack: true } : {}) },
    };
    const id = book.append(conversation, echo);
    if (clientId) book.rememberPost(conversation, clientId, id);
    if (posted.type !== 'message') {
      res.json({ id });
      return;
    }

    const problem = malformedSubmission(posted.value);
    if (problem) {
      log.info({ conversation: conversation.id, problem }, 'playground: malformed card submission');
      notice(conversation, `That card submission could not be used (${problem}), so nothing was done. Use the buttons on a recent card, or type your message.`, id);
      res.json({ id });
      return;
    }

    const baseUrl = baseUrlOf(req);
    const activity: Json = {
      ...echo,
      id,
      timestamp: new Date().toISOString(),
      serviceUrl: baseUrl,
      conversation: { id: conversation.id, conversationType: 'personal' },
      locale: posted.locale ?? 'en-GB',
    };
    await forward(conversation, activity, baseUrl);
    res.json({ id });
  });

  /** Posts the activity to the bot's endpoint over loopback HTTP; a refusal or failure becomes a message in the chat. */
  const forward = async (conversation: Conversation, activity: Json, baseUrl: string) => {
    try {
      const response = await fetch(`${baseUrl}${botPath}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(activity),
        signal: AbortSignal.timeout(60_000),
      });
      if (response.ok) return;
      const body = (await response.json().catch(() => undefined)) as Json | undefined;
      const message = body?.error?.message;
      log.warn({ status: response.status, conversation: conversation.id }, 'playground: the bot refused an activity');
      notice(conversation, response.status < 500 && message
        ? `The bot could not take that message: ${message}`
        : `The bot did not answer (HTTP ${response.status}). Please try again; if it keeps happening, look at the server's log.`, activity.id);
    } catch (error) {
      log.warn({ err: { name: (error as Error).name }, conversation: conversation.id }, 'playground: the bot could not be reached');
      notice(conversation, 'The bot could not be reached just now. Please try again in a moment.', activity.id);
    }
  };

  // ── Bot Connector API (what botbuilder calls to send; serviceUrl = this server) ────────────────

  const receiveFromBot = async (req: Request, res: Response) => {
    const conversation = conversationOr404(req, res);
    if (!conversation) return;
    const body = req.body as Json | undefined;
    if (!body || typeof body !== 'object' || typeof body.type !== 'string') return sendError(res, 400, 'bad_request', 'Not an activity');
    const { serviceUrl: _serviceUrl, id: _id, ...activity } = body;
    const id = book.append(conversation, {
      ...activity,
      channelId: PLAYGROUND_CHANNEL,
      from: { ...BOT_ACCOUNT, ...(body.from ?? {}), role: 'bot' },
      recipient: userAccount(conversation.identity),
      replyToId: req.params.replyToId ?? body.replyToId,
      timestamp: new Date().toISOString(),
    });
    res.json({ id });
  };
  server.post('/v3/conversations/:conversationId/activities', guard, ...jsonBody, receiveFromBot);
  server.post('/v3/conversations/:conversationId/activities/:replyToId', guard, ...jsonBody, receiveFromBot);
  server.put('/v3/conversations/:conversationId/activities/:activityId', guard, ...jsonBody, async (req: Request, res: Response) => {
    const conversation = conversationOr404(req, res);
    if (!conversation) return;
    const { serviceUrl: _serviceUrl, ...activity } = (req.body ?? {}) as Json;
    if (!book.update(conversation, String(req.params.activityId), { ...activity, from: { ...BOT_ACCOUNT, role: 'bot' } })) {
      return sendError(res, 404, 'not_found', 'No such activity in this conversation');
    }
    res.json({ id: req.params.activityId });
  });
}

export function userAccount(identity: PlaygroundIdentity): Json {
  return { id: identity.userId, name: identity.name, role: 'user' };
}

const INVALID = Symbol('invalid');
const TOO_LARGE = Symbol('too large');
const MAX_START_BODY = 16 * 1024;

/** Reads a small optional JSON body without the body parser (DirectLineJS starts a conversation with or without one). */
async function readOptionalJson(req: Request): Promise<unknown> {
  if (Number(req.header('content-length') ?? '0') > MAX_START_BODY) return TOO_LARGE;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as unknown as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_START_BODY) return TOO_LARGE;
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8').trim();
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return INVALID;
  }
}
