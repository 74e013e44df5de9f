/**
 * Slack through Bolt, mounted on the same restify server at /slack/events: events, slash
 * commands, shortcuts and interactivity. Bolt's HTTPReceiver verifies request signatures (with the
 * 5-minute window) and answers the url_verification handshake. Every request is acknowledged at
 * once and the work goes on after the acknowledgement, except a modal's submission, which waits
 * (at most VIEW_ACK_DEADLINE_MS) for the core so a form with mistakes can stay open with per-field
 * errors.
 *
 * One school per workspace: Inbound.tenantId is the team id (mapped with `schools add --slack-team`),
 * the user id is the U… id. Tokens: SLACK_BOT_TOKEN for one workspace, or Bolt's OAuth install
 * (SLACK_CLIENT_ID/SECRET/STATE_SECRET) with installations kept in our Store.
 *
 * Bolt's and the Web API client's own retries are off: a proactive send that fails throws a
 * DeliveryError (throttled with Retry-After, permanent or transient) and the outbox decides.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
// Named imports, not the default one: Node gives a CommonJS module's exports object as the default,
// but vitest (and other bundler-style loaders) give its `default` export, the App class alone.
import { App, HTTPReceiver, LogLevel, type AppOptions, type Logger as BoltLogger, type ReceiverEvent, type webApi } from '@slack/bolt';
import type { Server } from 'restify';
import type { Bot } from '../../bot/bot.ts';
import { stackFrames } from '../../errors.ts';
import type { Directory } from '../../bot/directory.ts';
import type { Response as BotResponse } from '../../bot/bot.ts';
import type { Inbound, Submission } from '../../bot/inbound.ts';
import type { PlatformSender } from '../../bot/notifier.ts';
import { text, type Card, type Reply } from '../../bot/reply.ts';
import type { Settings } from '../../config.ts';
import { classifyDeliveryFailure } from '../../delivery/classify.ts';
import { deliverReplies, type UpdateSlot } from '../../delivery/message-refs.ts';
import { DeliveryError } from '../../delivery/types.ts';
import type { Logger } from '../../logger.ts';
import type { Store } from '../../store/store.ts';
import {
  ACTION_IDS,
  FORM_CALLBACK_ID,
  NOTICE_CALLBACK_ID,
  SlackRenderError,
  escapeMrkdwn,
  hasForm,
  inputsOf,
  needsStoredCopy,
  noticeView,
  packMessages,
  renderCardMessage,
  renderModal,
  renderReplyMessage,
  renderTextMessage,
  type SlackMessage,
} from './block-kit.ts';
import { slackReferenceSchema, type SlackReference } from './delivery.ts';
import { SlackForms } from './forms.ts';
import { createHome, isHomeView, type HomeSections } from './home.ts';
import type { Roster } from '../../bot/roster.ts';
import { readSlackUsers, slackRosterHooks } from './roster.ts';
import { postSlackMessage, slackSurface } from './messages.ts';
import { StoreInstallationStore } from './installation-store.ts';
import { answerForView, fromSlackText, normaliseViewState, parseButtonValue, parseMetadata, parseOpenFormValue, submissionFrom } from './interaction.ts';

type WebClient = webApi.WebClient;
type Conversation = Inbound['conversation'];
type Respond = (message: Record<string, unknown>) => Promise<unknown>;

/** Bot scopes the app asks for (the manifest in manifest/slack lists the same). */
export const SLACK_BOT_SCOPES = ['app_mentions:read', 'chat:write', 'commands', 'im:history', 'im:write', 'users:read'] as const;
export const SLACK_COMMANDS = { ask: '/aup', report: '/report-incident' } as const;
export const SLACK_SHORTCUTS = { reportMessage: 'report_message', reportIncident: 'report_incident' } as const;
export const SLACK_INSTALL_PATH = '/slack/install';
export const SLACK_REDIRECT_PATH = '/slack/oauth_redirect';
/** What /report-incident and the shortcuts send to the core: the same words a user would type. */
export const REPORT_TEXT = 'report an incident';
/** A modal's submission waits this long for the core before the modal is closed and the answer goes to the DM. */
export const VIEW_ACK_DEADLINE_MS = 2500;

export interface SlackChannel {
  requestListener: (req: IncomingMessage, res: ServerResponse) => void;
  /** Proactive sender for the Notifier and the outbox: a direct message to the person. Throws DeliveryError. */
  send: PlatformSender;
  /** Adds the OAuth install routes (GET /slack/install, /slack/oauth_redirect) when OAuth is configured. */
  mountInstallRoutes(server: Server): void;
  /** Resolves once the work of acknowledged requests has finished (for a graceful shutdown). */
  drain(): Promise<void>;
  installationStore?: StoreInstallationStore;
}

export interface SlackChannelOptions {
  settings: NonNullable<Settings['slack']>;
  /** The bot's public base URL (the OAuth redirect is PUBLIC_URL/slack/oauth_redirect). */
  publicUrl: string;
  bot: Bot;
  store: Store;
  directory: Directory;
  log: Logger;
  /**
   * The App Home's first cards for a person (main.ts gives the acknowledgements feature's: what they
   * have to read and accept). Without it the Home tab shows the help and the shortcuts.
   */
  homeSections?: HomeSections;
  /** The staff directory's roster sync: workspaces are read with users.list (src/adapters/slack/roster.ts). */
  roster?: Roster;
}

/** Event ids remembered to drop Slack's repeats: about a day's events for a large school. */
const SEEN_EVENTS_KEPT = 10_000;

/** A bounded set of the most recently added ids (the oldest forgotten first). */
class RecentIds {
  readonly #ids = new Set<string>();
  constructor(private readonly max: number) {}
  /** Adds the id; false when it was already there. */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.max) this.#ids.delete(this.#ids.values().next().value!);
    return true;
  }
}

class NotInstalledError extends Error {
  constructor() {
    super('the app is not installed in this workspace');
    this.name = 'NotInstalledError';
  }
}

/** The installation store, with "not installed" told apart from a store failure. */
class InstallationStoreWithMisses extends StoreInstallationStore {
  override async fetchInstallation(...args: Parameters<StoreInstallationStore['fetchInstallation']>) {
    try {
      return await super.fetchInstallation(...args);
    } catch (error) {
      if (error instanceof Error && /not installed/.test(error.message)) throw new NotInstalledError();
      throw error;
    }
  }
}

// Loose readers for payload fields: a signed payload can still be malformed, and must be refused, not crash.
type Loose = Record<string, unknown>;
const obj = (value: unknown): Loose | undefined => (value && typeof value === 'object' && !Array.isArray(value) ? (value as Loose) : undefined);
const str = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value : undefined);

const conversationKind = (channelId: string | undefined): Conversation['kind'] => (channelId?.startsWith('D') ? 'personal' : channelId?.startsWith('G') ? 'group' : 'channel');

/** Who and where a request is from, and how to answer it. */
interface Scope {
  teamId: string;
  enterpriseId?: string;
  userId: string;
  userName?: string;
  token?: string;
  client: WebClient;
}

const UNKNOWN_BUTTON = "Sorry, I didn't recognise that button or form. It may come from an old message: please start again.";
const FORM_REFUSED = "Sorry, I couldn't read that form (it may come from an old message), so nothing was saved. Please start again.";

export function createSlackChannel(options: SlackChannelOptions): SlackChannel {
  const { settings, bot, log, store, directory } = options;
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
  // No retries anywhere in the Web API client: a 429 is thrown at once (WebAPIRateLimitedError with
  // Retry-After) so the outbox pauses the school's sending instead of the client sleeping and retrying.
  const clientOptions = {
    ...(settings.apiUrl ? { slackApiUrl: settings.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
  };
  const oauth = Boolean(settings.clientId && settings.clientSecret && settings.stateSecret);
  const installationStore = oauth ? new InstallationStoreWithMisses(store, { cacheSeconds: 30 }) : undefined;
  const forms = new SlackForms(store, directory);
  const home = createHome({ directory, sections: options.homeSections, log });
  const rosterHooks = options.roster && slackRosterHooks({ roster: options.roster, log });
  /** Workspaces the app was removed from while this process ran: sends there fail at once, as permanent, with that reason. */
  const removedWorkspaces = new Set<string>();

  // The HTTP response of each request Bolt is handling, so a payload no listener acknowledges (one
  // Bolt cannot even classify) is refused at once rather than left hanging until the 3-second timeout.
  const responses = new Map<number, ServerResponse>();
  let nextRequest = 0;
  const RESPONSE_KEY = 'esafetyRequest';

  const receiver = new HTTPReceiver({
    signingSecret: settings.signingSecret,
    endpoints: '/slack/events',
    logger,
    // The same limit as the server's for /api/messages (server.ts MAX_BODY_BYTES), also for chunked bodies.
    bodyLimit: 256 * 1024,
    processBeforeResponse: false,
    customPropertiesExtractor: (req) => {
      const id = (req as IncomingMessage & { [RESPONSE_KEY]?: number })[RESPONSE_KEY];
      return id === undefined ? {} : { [RESPONSE_KEY]: id };
    },
    unhandledRequestHandler: ({ logger: requestLogger, response }) => {
      requestLogger.warn('slack request not acknowledged within 3 seconds');
      if (!response.headersSent) {
        response.writeHead(500);
        response.end();
      }
    },
    ...(oauth
      ? {
          clientId: settings.clientId,
          clientSecret: settings.clientSecret,
          stateSecret: settings.stateSecret,
          installationStore,
          scopes: [...SLACK_BOT_SCOPES],
          redirectUri: `${options.publicUrl}${SLACK_REDIRECT_PATH}`,
          installerOptions: {
            installPath: SLACK_INSTALL_PATH,
            redirectUriPath: SLACK_REDIRECT_PATH,
            clientOptions,
            callbackOptions: {
              success: (installation, installOptions, req, res) => {
                if (installation.team?.id) removedWorkspaces.delete(installation.team.id);
                if (rosterHooks) void track(rosterHooks.installed(installation.team?.id, installation.enterprise?.id));
                installedPage(installation, installOptions, req, res);
              },
              failure: installFailedPage,
            },
            renderHtmlForInstallPath: installPage,
          },
        }
      : {}),
  });

  const pending = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    pending.add(work);
    void work.finally(() => pending.delete(work)).catch(() => undefined);
    return work;
  };

  class EsafetySlackApp extends App {
    override async processEvent(event: ReceiverEvent): Promise<void> {
      let acknowledged = false;
      const ack = event.ack;
      const work = super.processEvent({ ...event, ack: async (response?: unknown) => {
        acknowledged = true;
        return ack(response);
      } });
      let failed = false;
      try {
        await track(work);
      } catch (error) {
        // Bolt itself could not read the payload (e.g. a view_submission without a view).
        if (acknowledged) throw error;
        failed = true;
      }
      if (acknowledged) return;
      // Nothing acknowledged it: a payload of no type Bolt knows, one it cannot read, or an options request (no menu here loads options).
      const id = event.customProperties?.[RESPONSE_KEY] as number | undefined;
      const res = id === undefined ? undefined : responses.get(id);
      boltLog.warn({ type: str(event.body.type) ?? 'unknown', failed }, 'slack payload refused: nothing here handles it');
      if (res && !res.headersSent) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'bad_request', message: 'Not a Slack payload this app handles' } }));
      }
    }
  }

  const appOptions: AppOptions = {
    receiver,
    logger,
    clientOptions,
    // One school, one token; without a token Bolt still verifies and answers (slash commands answer
    // through response_url), it just cannot post, open modals or publish the Home tab.
    ...(oauth ? {} : { authorize: async () => ({ botToken: settings.botToken }) }),
  };
  const app = new EsafetySlackApp(appOptions);
  const apiClient = app.client;
  // Slack sends an event again (X-Slack-Retry-Num) when it did not see the acknowledgement in time.
  // Events are acknowledged before this runs, so a repeat of one this process has seen is already
  // being handled: dropped, rather than answering the question twice. (A repeat that reaches another
  // instance is answered there: the ids are kept in memory, not in the store, to keep turns cheap.)
  const seenEvents = new RecentIds(SEEN_EVENTS_KEPT);
  app.use(async ({ body, context, next }) => {
    const eventId = str(obj(body)?.event_id);
    if (eventId && !seenEvents.add(eventId)) {
      boltLog.info({ retry: context.retryNum ?? 0, reason: context.retryReason }, 'slack event delivered again: already handled');
      return;
    }
    await next();
  });
  if (rosterHooks) {
    // Never delays the acknowledgement: a workspace's first request only schedules its sync.
    app.use(async ({ context, body, next }) => {
      void track(rosterHooks.workspaceSeen(context.teamId, context.enterpriseId, str(obj(obj(body)?.event)?.type)));
      await next();
    });
    rosterHooks.registerEvents(app);
    options.roster!.register('slack', async (source) =>
      readSlackUsers({ client: apiClient, token: await tokenFor({ teamId: source.teamId, enterpriseId: source.access.enterpriseId }) }, source));
  }

  // ------------------------------------------------------------------------------------------
  // Direct messages and references

  /** The app's DM channel with each person, once known (from a DM, the Home tab or conversations.open). */
  const dmChannels = new Map<string, string>();
  const dmKey = (teamId: string, userId: string) => `${teamId}:${userId}`;
  const rememberDm = (teamId: string, userId: string, channel: string) => {
    if (dmChannels.size > 50_000) dmChannels.clear();
    dmChannels.set(dmKey(teamId, userId), channel);
  };

  async function openDm(scope: Scope): Promise<string> {
    const known = dmChannels.get(dmKey(scope.teamId, scope.userId));
    if (known) return known;
    if (!scope.token) throw new DeliveryError('permanent', 'Slack: no bot token for this workspace');
    const opened = await scope.client.conversations.open({ token: scope.token, users: scope.userId });
    const channel = str(obj(opened.channel)?.id);
    if (!channel) throw new DeliveryError('transient', 'Slack: conversations.open returned no channel');
    rememberDm(scope.teamId, scope.userId, channel);
    return channel;
  }

  /**
   * The reference kept for proactive messages: always the app's DM with the person, so it is the same
   * whichever way they reached the bot (a record rewritten only when it really changes). Undefined
   * when the DM cannot be known (no token): the stored reference is then left as it is.
   */
  async function referenceFor(scope: Scope, imChannel?: string): Promise<SlackReference | undefined> {
    if (imChannel) rememberDm(scope.teamId, scope.userId, imChannel);
    let channel = imChannel;
    if (!channel) channel = await openDm(scope).catch(() => undefined);
    if (!channel) return undefined;
    return { teamId: scope.teamId, ...(scope.enterpriseId ? { enterpriseId: scope.enterpriseId } : {}), userId: scope.userId, channel };
  }

  type TurnInput = { text?: string; submission?: Submission; conversation: Conversation; imChannel?: string; attachmentCount?: number };
  async function runTurn(scope: Scope, turn: TurnInput): Promise<Reply[]> {
    return (await respondTo(scope, turn)).replies;
  }

  async function respondTo(scope: Scope, turn: TurnInput): Promise<BotResponse> {
    const inbound: Inbound = {
      platform: 'slack',
      tenantId: scope.teamId,
      user: { id: scope.userId, ...(scope.userName ? { name: scope.userName } : {}) },
      conversation: turn.conversation,
      text: turn.text,
      submission: turn.submission,
      reference: await referenceFor(scope, turn.imChannel),
      attachmentCount: turn.attachmentCount,
      correlationId: randomUUID(),
    };
    return bot.respond(inbound);
  }

  // ------------------------------------------------------------------------------------------
  // Delivering replies

  /** A message for a reply; a card with a form (or oversized button data) is stored first so its button can open it. */
  async function messageFor(scope: Scope, reply: Reply, conversation: Conversation): Promise<SlackMessage> {
    if (reply.type === 'card' && needsStoredCopy(reply.card)) {
      const formId = await forms.save({ card: reply.card, teamId: scope.teamId, userId: scope.userId, conversation }).catch((error: unknown) => {
        log.warn({ err: { name: (error as Error).name } }, 'slack form not stored; sent without its form button');
        return undefined;
      });
      return renderCardMessage(reply.card, { formId });
    }
    return renderReplyMessage(reply);
  }

  /** Opens a card's form as a modal. False when it cannot (no token, expired trigger, a form Slack cannot show). */
  async function openModal(scope: Scope, triggerId: string, card: Card, conversation: Conversation, formId?: string): Promise<boolean> {
    if (!scope.token) return false;
    let view;
    try {
      view = renderModal(card, { form: formId, conversation });
    } catch (error) {
      if (!(error instanceof SlackRenderError)) throw error;
      if (formId || !/too long/.test(error.message)) {
        log.warn({ kind: card.kind, reason: error.message }, 'slack form cannot be shown as a modal');
        return false;
      }
      // The submit data does not fit in private_metadata: store the form and refer to it.
      const stored = await forms.save({ card, teamId: scope.teamId, userId: scope.userId, conversation });
      return stored ? openModal(scope, triggerId, card, conversation, stored) : false;
    }
    try {
      await scope.client.views.open({ token: scope.token, trigger_id: triggerId, view });
      return true;
    } catch (error) {
      log.warn({ kind: card.kind, reason: classifyDeliveryFailure('Slack', error).message }, 'slack modal not opened');
      return false;
    }
  }

  interface Destination {
    scope: Scope;
    conversation: Conversation;
    post: (message: SlackMessage) => Promise<unknown>;
    /** For interactive requests: the first form among the replies opens at once as a modal. */
    triggerId?: string;
    /** In the app's DM (its channel): cards with an updateKey replace their earlier message there. */
    dm?: { channel: string; updates?: UpdateSlot };
  }

  async function deliver(destination: Destination, replies: Reply[]): Promise<void> {
    const { scope, conversation, dm } = destination;
    if (!dm?.updates) return postReplies(destination, replies);
    const surface = slackSurface({ client: scope.client, token: scope.token, channel: dm.channel, post: (rest) => postReplies(destination, rest), render: (reply) => messageFor(scope, reply, conversation) });
    await deliverReplies(surface, replies, dm.updates);
  }

  async function postReplies(destination: Destination, replies: Reply[]): Promise<void> {
    const { scope, conversation } = destination;
    const messages: SlackMessage[] = [];
    let triggerUsed = false;
    for (const reply of replies) {
      if (reply.type === 'card' && hasForm(reply.card) && destination.triggerId && !triggerUsed) {
        triggerUsed = true;
        if (await openModal(scope, destination.triggerId, reply.card, conversation)) continue;
      }
      messages.push(await messageFor(scope, reply, conversation));
    }
    for (const message of packMessages(messages)) await destination.post(message);
  }

  const viaRespond = (respond: Respond, responseType: 'ephemeral' | 'in_channel') => (message: SlackMessage) =>
    respond({ response_type: responseType, replace_original: false, text: message.text, blocks: message.blocks });

  const viaDm = (scope: Scope) => async (message: SlackMessage) => {
    const channel = await openDm(scope);
    return postSlackMessage(scope.client, scope.token, channel, message);
  };

  /** Runs work after the acknowledgement; a failure is logged and, where possible, the person told. */
  async function safely(what: string, tell: ((message: string) => Promise<unknown>) | undefined, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      const reference = randomUUID();
      const e = error instanceof Error ? error : new Error(String(error));
      log.error({ correlationId: reference, what, err: { name: e.name, stack: stackFrames(e) } }, 'slack request failed after acknowledgement');
      await tell?.(`Sorry, something went wrong on our side. If it keeps happening, tell your IT team the reference ${reference}.`).catch(() => undefined);
    }
  }

  const ephemeral = (respond: Respond | undefined) => (respond ? (message: string) => respond({ response_type: 'ephemeral', replace_original: false, text: escapeMrkdwn(message) }) : undefined);

  // ------------------------------------------------------------------------------------------
  // Starting a report (/report-incident, the shortcuts, the Home button)

  /** Puts the shared message into the report form's first empty multi-line field. */
  function prefill(replies: Reply[], sharedText: string | undefined): Reply[] {
    if (!sharedText?.trim()) return replies;
    let done = false;
    return replies.map((reply) => {
      if (done || reply.type !== 'card' || !hasForm(reply.card)) return reply;
      const target = inputsOf(reply.card).find((input) => input.kind === 'text' && input.multiline && !input.value);
      if (!target) return reply;
      done = true;
      const blocks = reply.card.blocks.map((block) =>
        block.type === 'input' && block.input === target && target.kind === 'text'
          ? { ...block, input: { ...target, value: sharedText.slice(0, target.maxLength ?? 3000) } }
          : block,
      );
      return { ...reply, card: { ...reply.card, blocks } };
    });
  }

  async function startReport(scope: Scope, where: { conversation: Conversation; triggerId?: string; post: Destination['post']; sharedText?: string; imChannel?: string }): Promise<void> {
    const replies = prefill(await runTurn(scope, { text: REPORT_TEXT, conversation: where.conversation, imChannel: where.imChannel }), where.sharedText);
    await deliver({ scope, conversation: where.conversation, triggerId: where.triggerId, post: where.post }, replies);
  }

  // ------------------------------------------------------------------------------------------
  // Events

  const scopeOf = (context: Loose, client: WebClient, userId: string, body?: Loose): Scope | undefined => {
    const teamId = str(context.teamId) ?? str(obj(body?.team)?.id) ?? str(body?.team_id);
    if (!teamId || !userId) return undefined;
    const enterpriseId = str(context.enterpriseId) ?? str(obj(body?.enterprise)?.id) ?? str(body?.enterprise_id);
    return { teamId, ...(enterpriseId ? { enterpriseId } : {}), userId, token: str(context.botToken), client };
  };

  app.message(async ({ message, context, client }) => {
    const event = message as unknown as Loose;
    // Only people, only in the app's direct messages: never the bot's own posts, edits or channel chatter.
    // A file shared in the DM is let through only so the core can refuse it and say why (no images, ever).
    const fileShare = event.subtype === 'file_share';
    if ((event.subtype !== undefined && !fileShare) || event.bot_id !== undefined || event.channel_type !== 'im') return;
    const userId = str(event.user);
    const channel = str(event.channel);
    const scope = userId && channel ? scopeOf(context, client, userId) : undefined;
    if (!scope || !channel) return;
    const post = (m: SlackMessage) => postSlackMessage(client, scope.token, channel, m);
    await safely('message', (m) => post(renderTextMessage(m)), async () => {
      const conversation: Conversation = { id: channel, kind: 'personal' };
      const attachmentCount = fileShare ? Math.max(1, Array.isArray(event.files) ? event.files.length : 1) : 0;
      const { replies, updates } = await respondTo(scope, { text: fromSlackText(typeof event.text === 'string' ? event.text : ''), conversation, imChannel: channel, attachmentCount });
      await deliver({ scope, conversation, post, dm: { channel, updates } }, replies);
    });
  });

  app.event('app_mention', async ({ event, context, client }) => {
    const e = event as unknown as Loose;
    const userId = str(e.user);
    const channel = str(e.channel);
    const scope = userId && channel ? scopeOf(context, client, userId) : undefined;
    if (!scope || !channel || e.bot_id !== undefined) return;
    // Answered privately (only the person who asked sees it), in the thread when asked in one.
    const threadTs = str(e.thread_ts);
    const post = (m: SlackMessage) => client.chat.postEphemeral({ token: scope.token, channel, user: scope.userId, text: m.text, blocks: m.blocks, ...(threadTs ? { thread_ts: threadTs } : {}) });
    await safely('app_mention', undefined, async () => {
      const conversation: Conversation = { id: channel, kind: conversationKind(channel) };
      // Without the mention of the app itself (whoever else is mentioned stays in the question).
      const botUser = str((context as Loose).botUserId)?.match(/^[A-Z0-9]+$/)?.[0];
      const withoutApp = String(e.text ?? '').replace(botUser ? new RegExp(`<@${botUser}(\\|[^>]*)?>`, 'g') : /^\s*<@[A-Z0-9]+(\|[^>]*)?>/, ' ');
      const question = fromSlackText(withoutApp).replace(/\s+/g, ' ').trim();
      await deliver({ scope, conversation, post }, await runTurn(scope, { text: question, conversation }));
    });
  });

  app.event('app_home_opened', async ({ event, context, client }) => {
    const e = event as unknown as Loose;
    const userId = str(e.user);
    const scope = userId ? scopeOf(context, client, userId) : undefined;
    if (!scope || e.tab !== 'home' || !scope.token) return;
    const channel = str(e.channel);
    await safely('app_home_opened', undefined, () => publishHome(scope, channel?.startsWith('D') ? channel : undefined));
  });

  /** Publishes the person's Home tab (home.ts); `imChannel` is the app's DM with them, when known. */
  const publishHome = (scope: Scope, imChannel?: string): Promise<void> =>
    home.publish({
      teamId: scope.teamId,
      userId: scope.userId,
      help: () => runTurn(scope, { text: 'help', conversation: { id: imChannel ?? `im:${scope.userId}`, kind: 'personal' }, imChannel }),
      publish: (view) => scope.client.views.publish({ token: scope.token, user_id: scope.userId, view }),
    });

  const forgetInstallation = async (context: Loose, body: Loose, why: string) => {
    const teamId = str(context.teamId) ?? str(body.team_id);
    const enterpriseId = str(context.enterpriseId) ?? str(body.enterprise_id);
    const isEnterpriseInstall = context.isEnterpriseInstall === true && enterpriseId !== undefined;
    log.info({ why, oauth }, 'slack app removed from a workspace');
    if (teamId) removedWorkspaces.add(teamId);
    // The directory stops following the workspace (src/adapters/slack/roster.ts); its people and their roles stay.
    await rosterHooks?.uninstalled(teamId);
    if (!installationStore || (!teamId && !isEnterpriseInstall)) return;
    await installationStore.deleteInstallation({ teamId, enterpriseId, isEnterpriseInstall }).catch((error: unknown) => log.warn({ err: { name: (error as Error).name } }, 'slack installation not deleted'));
  };
  app.event('app_uninstalled', async ({ context, body }) => forgetInstallation(context as Loose, body as unknown as Loose, 'app_uninstalled'));
  app.event('tokens_revoked', async ({ event, context, body }) => {
    const bots = obj(obj(event)?.tokens)?.bot;
    if (Array.isArray(bots) && bots.length > 0) await forgetInstallation(context as Loose, body as unknown as Loose, 'tokens_revoked');
  });

  // ------------------------------------------------------------------------------------------
  // Slash commands

  app.command(/.*/, async ({ command, ack, respond, context, client }) => {
    const name = command.command;
    if (name !== SLACK_COMMANDS.ask && name !== SLACK_COMMANDS.report) {
      await ack({ response_type: 'ephemeral', text: escapeMrkdwn(`Sorry, I don't know the command ${String(name).slice(0, 50)}. Try ${SLACK_COMMANDS.ask} followed by your question, or ${SLACK_COMMANDS.report}.`) });
      return;
    }
    const scope = scopeOf(context as Loose, client, str(command.user_id) ?? '', command as unknown as Loose);
    if (!scope) {
      await ack({ response_type: 'ephemeral', text: 'Sorry, that command came without a workspace or user, so I cannot answer it.' });
      return;
    }
    await ack();
    scope.userName = str(command.user_name);
    const channel = str(command.channel_id);
    const conversation: Conversation = { id: channel ?? `im:${scope.userId}`, kind: conversationKind(channel) };
    const post = viaRespond(respond as Respond, 'ephemeral');
    await safely(name, ephemeral(respond as Respond), async () => {
      if (name === SLACK_COMMANDS.report) {
        await startReport(scope, { conversation, triggerId: str(command.trigger_id), post });
        return;
      }
      const replies = await runTurn(scope, { text: fromSlackText(String(command.text ?? '')).trim(), conversation });
      await deliver({ scope, conversation, triggerId: str(command.trigger_id), post }, replies);
    });
  });

  // ------------------------------------------------------------------------------------------
  // Shortcuts

  app.shortcut(/.*/, async ({ shortcut, ack, respond, context, client }) => {
    await ack();
    const body = shortcut as unknown as Loose;
    const scope = scopeOf(context as Loose, client, str(obj(body.user)?.id) ?? '', body);
    const tell = ephemeral(respond as Respond | undefined);
    if (!scope) return;
    scope.userName = str(obj(body.user)?.username) ?? str(obj(body.user)?.name);
    const callbackId = str(body.callback_id);
    await safely('shortcut', tell, async () => {
      if (callbackId === SLACK_SHORTCUTS.reportMessage && body.type === 'message_action') {
        const channel = str(obj(body.channel)?.id);
        const message = obj(body.message);
        const author = str(message?.user) ?? str(message?.bot_id) ?? 'someone';
        const shared = typeof message?.text === 'string' && message.text.trim() ? `Slack message from ${author}:\n${fromSlackText(message.text)}` : undefined;
        await startReport(scope, {
          conversation: { id: channel ?? `im:${scope.userId}`, kind: conversationKind(channel) },
          triggerId: str(body.trigger_id),
          post: respond ? viaRespond(respond as Respond, 'ephemeral') : viaDm(scope),
          sharedText: shared,
        });
        return;
      }
      if (callbackId === SLACK_SHORTCUTS.reportIncident) {
        const reference = await referenceFor(scope);
        await startReport(scope, { conversation: { id: reference?.channel ?? `im:${scope.userId}`, kind: 'personal' }, triggerId: str(body.trigger_id), post: viaDm(scope) });
        return;
      }
      log.info({ callbackId: callbackId?.slice(0, 60) }, 'slack shortcut not recognised');
      await tell?.(UNKNOWN_BUTTON);
    });
  });

  // ------------------------------------------------------------------------------------------
  // Buttons (block_actions)

  app.action(/.*/, async ({ ack, body, context, client, respond }) => {
    await ack();
    const payload = body as unknown as Loose;
    if (payload.type !== 'block_actions') return;
    const action = obj(Array.isArray(payload.actions) ? payload.actions[0] : undefined);
    const actionId = str(action?.action_id) ?? '';
    if (actionId.startsWith(ACTION_IDS.urlPrefix)) return;
    const scope = scopeOf(context as Loose, client, str(obj(payload.user)?.id) ?? '', payload);
    if (!scope) return;
    scope.userName = str(obj(payload.user)?.username) ?? str(obj(payload.user)?.name);
    const view = obj(payload.view);
    const container = obj(payload.container);
    const inModal = container?.type === 'view' && view?.type === 'modal';
    const fromHome = isHomeView(view);
    const channel = str(obj(payload.channel)?.id) ?? str(container?.channel_id);
    const isDm = channel?.startsWith('D') ?? false;
    // Answers go where the button was: the DM (visible) or a channel (only to this person); from the Home tab, to the DM.
    const respondFn = str(payload.response_url) ? (respond as Respond) : undefined;
    const post: Destination['post'] = respondFn && !inModal ? viaRespond(respondFn, isDm && !container?.is_ephemeral ? 'in_channel' : 'ephemeral') : viaDm(scope);
    const tell = (message: string) => post(renderTextMessage(message));
    const triggerId = str(payload.trigger_id);

    await safely(actionId.slice(0, 60), tell, async () => {
      if (actionId === ACTION_IDS.homeReport) {
        const reference = await referenceFor(scope);
        await startReport(scope, { conversation: { id: reference?.channel ?? `im:${scope.userId}`, kind: 'personal' }, triggerId, post: viaDm(scope), imChannel: reference?.channel });
        return;
      }
      if (actionId === ACTION_IDS.openForm) {
        const formId = parseOpenFormValue(action?.value);
        const form = formId ? await forms.load(scope.teamId, scope.userId, formId) : undefined;
        if (!formId || !form) {
          await tell(formId ? 'That form has gone or is not yours. Please start again.' : UNKNOWN_BUTTON);
          return;
        }
        if (!triggerId || !(await openModal(scope, triggerId, form.card, form.conversation ?? { id: channel ?? `im:${scope.userId}`, kind: conversationKind(channel) }, formId))) {
          await tell("Sorry, I couldn't open that form just now. Please try the button again.");
        }
        return;
      }
      if (!actionId.startsWith(ACTION_IDS.submitPrefix)) {
        log.info({ actionId: actionId.slice(0, 60) }, 'slack action not recognised');
        await tell(UNKNOWN_BUTTON);
        return;
      }
      const value = parseButtonValue(action?.value);
      let data: Submission | undefined;
      if (value?.kind === 'data') data = value.data;
      else if (value?.kind === 'stored') {
        const form = await forms.load(scope.teamId, scope.userId, value.form);
        const stored = form?.card.actions?.[value.action];
        data = stored?.type === 'submit' ? (stored.data as Submission) : undefined;
      }
      if (!data) {
        log.info({ actionId: actionId.slice(0, 60) }, 'slack button value refused');
        await tell(UNKNOWN_BUTTON);
        return;
      }
      if (inModal && view) {
        await modalButton(scope, view, data);
        return;
      }
      // From the Home tab the turn is in the app's DM, where its answer goes; then the Home is
      // republished, so an acknowledgement accepted there leaves the list.
      const homeDm = fromHome ? (await referenceFor(scope))?.channel : undefined;
      const conversation: Conversation = fromHome ? { id: homeDm ?? `im:${scope.userId}`, kind: 'personal' } : { id: channel ?? `im:${scope.userId}`, kind: conversationKind(channel) };
      // A visible message of ours in a DM is in the app's own DM (ephemeral ones can be in anyone's DM).
      const imChannel = fromHome ? homeDm : isDm && !container?.is_ephemeral ? channel : undefined;
      const { replies, updates } = await respondTo(scope, { submission: data, conversation, imChannel });
      await deliver({ scope, conversation, triggerId, post, dm: imChannel ? { channel: imChannel, updates } : undefined }, replies);
      if (fromHome && scope.token) await publishHome(scope, homeDm);
    });
  });

  /** A button inside a modal (e.g. "Cancel report"): its data with the form's values; the modal then shows the answer. */
  async function modalButton(scope: Scope, view: Loose, data: Submission): Promise<void> {
    const viewId = str(view.id);
    const metadata = parseMetadata(view.private_metadata);
    const state = normaliseViewState(obj(view.state)?.values);
    const submission = 'values' in state ? submissionFrom(data, state.values) : undefined;
    if (!viewId) return;
    const hash = str(view.hash);
    const update = (next: ReturnType<typeof noticeView>) => scope.client.views.update({ token: scope.token, view_id: viewId, ...(hash ? { hash } : {}), view: next });
    if (!metadata || !submission) {
      await update(noticeView('Not sent', [text(FORM_REFUSED)]));
      return;
    }
    const conversation = metadata.conversation ?? { id: `im:${scope.userId}`, kind: 'personal' as const };
    const replies = await runTurn(scope, { submission, conversation });
    const answer = answerForView(replies, metadata.kind, inputBlockIds(view));
    if (answer.kind !== 'close') {
      const card = answer.kind === 'update' ? answer.card : (replies.find((r) => r.type === 'card' && r.card.kind === metadata.kind) as Extract<Reply, { type: 'card' }>).card;
      await update(renderModal(card, { form: metadata.form, conversation }));
      return;
    }
    if (metadata.form) await forms.remove(scope.teamId, metadata.form).catch(() => undefined);
    await update(noticeView('Done', replies));
  }

  const inputBlockIds = (view: Loose): string[] =>
    (Array.isArray(view.blocks) ? view.blocks : []).flatMap((block) => (obj(block)?.type === 'input' && str(obj(block)?.block_id) ? [str(obj(block)!.block_id)!] : []));

  // ------------------------------------------------------------------------------------------
  // Modal submissions (view_submission)

  const refuse = (message: string) => ({ response_action: 'update' as const, view: noticeView('Not sent', [text(message)]) });

  app.view({ callback_id: /.*/, type: 'view_closed' }, async ({ ack }) => {
    await ack();
  });

  app.view({ callback_id: /.*/, type: 'view_submission' }, async ({ ack, body, context, client }) => {
    const payload = body as unknown as Loose;
    const view = obj(payload.view);
    if (!view) {
      await ack(refuse(FORM_REFUSED));
      return;
    }
    if (view.callback_id === NOTICE_CALLBACK_ID) {
      await ack();
      return;
    }
    const scope = scopeOf(context as Loose, client, str(obj(payload.user)?.id) ?? '', payload);
    const metadata = view.callback_id === FORM_CALLBACK_ID ? parseMetadata(view.private_metadata) : undefined;
    const state = normaliseViewState(obj(view.state)?.values);
    if (!scope || !metadata || 'problem' in state) {
      log.info({ callbackId: str(view.callback_id)?.slice(0, 60), problem: 'problem' in state ? state.problem : metadata ? 'no team or user' : 'metadata' }, 'slack view_submission refused');
      await ack(refuse(FORM_REFUSED));
      return;
    }
    scope.userName = str(obj(payload.user)?.username) ?? str(obj(payload.user)?.name);
    let data = metadata.data;
    if (!data && metadata.form !== undefined && metadata.action !== undefined) {
      const form = await forms.load(scope.teamId, scope.userId, metadata.form);
      const action = form?.card.actions?.[metadata.action];
      data = action?.type === 'submit' ? action.data : undefined;
    }
    const submission = data ? submissionFrom(data, state.values) : undefined;
    if (!submission) {
      await ack(refuse(FORM_REFUSED));
      return;
    }
    const conversation = metadata.conversation ?? { id: `im:${scope.userId}`, kind: 'personal' as const };
    const toDm = (replies: Reply[]) => safely('view_submission', undefined, () => deliver({ scope, conversation, post: viaDm(scope) }, replies));

    const work = runTurn(scope, { submission, conversation });
    const timer = sleep(VIEW_ACK_DEADLINE_MS, undefined, { ref: false });
    let replies: Reply[] | undefined;
    try {
      replies = await Promise.race([work, timer]);
    } catch (error) {
      await ack();
      await safely('view_submission', undefined, () => Promise.reject(error));
      return;
    }
    if (!replies) {
      // The core is slow: close the modal now (Slack allows 3 seconds) and send the answer to the DM.
      await ack();
      await toDm(await work.catch(() => [text(FORM_REFUSED)]));
      return;
    }
    const answer = answerForView(replies, metadata.kind, inputBlockIds(view));
    if (answer.kind === 'errors') {
      await ack({ response_action: 'errors', errors: answer.errors });
      if (answer.rest.length) await toDm(answer.rest);
      return;
    }
    if (answer.kind === 'update') {
      let next;
      try {
        next = renderModal(answer.card, { form: metadata.form, conversation });
      } catch {
        await ack();
        await toDm(replies);
        return;
      }
      await ack({ response_action: 'update', view: next });
      if (answer.rest.length) await toDm(answer.rest);
      return;
    }
    await ack();
    if (metadata.form) await forms.remove(scope.teamId, metadata.form).catch(() => undefined);
    await toDm(answer.replies);
  });

  app.error(async (error) => {
    const e = error as Error & { code?: string };
    log.error({ code: e.code, name: e.name, stack: stackFrames(e) }, 'slack handler failed');
  });

  // ------------------------------------------------------------------------------------------
  // Proactive messages

  async function tokenFor(reference: SlackReference): Promise<string> {
    if (removedWorkspaces.has(reference.teamId)) throw new DeliveryError('permanent', 'Slack: the app was uninstalled from this workspace (or its token revoked)');
    if (!oauth) {
      if (!settings.botToken) throw new DeliveryError('permanent', 'Slack: no bot token (SLACK_BOT_TOKEN) to send with');
      return settings.botToken;
    }
    try {
      const result = await receiver.installer!.authorize({ teamId: reference.teamId, enterpriseId: reference.enterpriseId, isEnterpriseInstall: false });
      if (!result.botToken) throw new DeliveryError('permanent', 'Slack: the installation has no bot token');
      return result.botToken;
    } catch (error) {
      if (error instanceof DeliveryError) throw error;
      // @slack/oauth's AuthorizationError (not Bolt's class of the same name) wraps what the store threw.
      const original = (error as { original?: unknown }).original ?? error;
      if (original instanceof NotInstalledError) throw new DeliveryError('permanent', 'Slack: the app is not installed in this workspace', { cause: error });
      throw new DeliveryError('transient', 'Slack: the installation could not be read', { cause: error });
    }
  }

  const send: PlatformSender = async (reference, replies, updates) => {
    const parsed = slackReferenceSchema.safeParse(reference);
    if (!parsed.success) throw new DeliveryError('permanent', 'Slack: the stored conversation reference is not usable');
    const ref = parsed.data;
    const token = await tokenFor(ref);
    try {
      const scope: Scope = { teamId: ref.teamId, enterpriseId: ref.enterpriseId, userId: ref.userId ?? '', token, client: apiClient };
      const channel = ref.channel ?? (await openDm(scope));
      const conversation: Conversation = { id: channel, kind: 'personal' };
      const render = (reply: Reply) => (ref.userId ? messageFor(scope, reply, conversation) : Promise.resolve(renderReplyMessage(reply)));
      const post = async (some: Reply[]) => {
        const messages: SlackMessage[] = [];
        for (const reply of some) messages.push(await render(reply));
        for (const message of packMessages(messages)) {
          await postSlackMessage(apiClient, token, channel, message);
        }
      };
      await deliverReplies(slackSurface({ client: apiClient, token, channel, post, render }), replies, updates);
    } catch (error) {
      throw classifyDeliveryFailure('Slack', error);
    }
  };

  return {
    requestListener: (req, res) => {
      const id = nextRequest++;
      (req as IncomingMessage & { [RESPONSE_KEY]?: number })[RESPONSE_KEY] = id;
      responses.set(id, res);
      res.once('close', () => responses.delete(id));
      receiver.requestListener(req, res);
    },
    send,
    mountInstallRoutes: (server) => {
      if (!oauth) return;
      for (const path of [SLACK_INSTALL_PATH, SLACK_REDIRECT_PATH]) {
        server.get(path, async (req, res) => {
          await new Promise<void>((resolve) => {
            res.once('close', resolve);
            receiver.requestListener(req, res);
          });
        });
      }
    },
    drain: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    installationStore,
  };
}

// ------------------------------------------------------------------------------------------
// OAuth result pages

const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto">${body}</body></html>`);
}

function installPage(url: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Add esafety-bot to Slack</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto">` +
    `<h1>Add esafety-bot to Slack</h1><p>The school's e-safety and acceptable use policies, in Slack. A workspace admin installs it once.</p>` +
    `<p><a href="${escapeHtml(url)}">Add to Slack</a></p></body></html>`
  );
}

function installedPage(installation: { team?: { id: string; name?: string }; enterprise?: { id: string } }, _options: unknown, _req: IncomingMessage, res: ServerResponse): void {
  const team = installation.team?.id ?? installation.enterprise?.id ?? 'unknown';
  page(
    res,
    200,
    'esafety-bot installed',
    `<h1>esafety-bot is installed</h1><p>Workspace ${escapeHtml(installation.team?.name ?? '')} (<code>${escapeHtml(team)}</code>).</p>` +
      `<p>Before it can answer, your IT team links this workspace to its school:</p>` +
      `<pre>npx esafety-bot schools add --id SCHOOL_ID --name "School name" --slack-team ${escapeHtml(team)}</pre>`,
  );
}

function installFailedPage(error: { code?: string }, _options: unknown, _req: IncomingMessage, res: ServerResponse): void {
  page(res, 400, 'Installation failed', `<h1>The installation did not finish</h1><p>Nothing was installed (${escapeHtml(String(error.code ?? 'error'))}). Please start again from the install link.</p>`);
}
