/**
 * Teams (and the Emulator, and the playground) through botbuilder's CloudAdapter. Translates an
 * Activity into an Inbound and the core's Replies into Activities with Adaptive Cards. The only
 * folder that imports botbuilder, so a move to the Microsoft 365 Agents SDK stays here.
 */
import { randomUUID } from 'node:crypto';
import {
  ActivityTypes,
  CardFactory,
  CloudAdapter,
  ConfigurationBotFrameworkAuthentication,
  TurnContext,
  type Activity,
  type ConversationReference,
} from 'botbuilder';
import type { Request, Response } from 'restify';
import { z } from 'zod';
import type { Bot } from '../../bot/bot.ts';
import { stackFrames } from '../../errors.ts';
import { submissionSchema, type Inbound, type Platform } from '../../bot/inbound.ts';
import type { PlatformSender } from '../../bot/notifier.ts';
import type { Reply } from '../../bot/reply.ts';
import type { Settings } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import { classifyDeliveryFailure } from '../../delivery/classify.ts';
import { deliverReplies } from '../../delivery/message-refs.ts';
import { renderAdaptiveCard } from './adaptive-card.ts';
import type { Roster } from '../../bot/roster.ts';
import { confirmationPrompt, creatingPersonalChats, isPersonalInstallWelcome, readTeamRoster, teamsRosterHooks } from './roster.ts';
import { teamsSurface } from './messages.ts';
import { ReusedClientsAuthentication } from './connector-clients.ts';
import { ValidatedCloudAdapter } from './validated-cloud-adapter.ts';

/** The fields a turn needs; anything else in an Activity passes through untouched. */
export const activitySchema = z.looseObject({
  type: z.string().min(1, 'type is required'),
  serviceUrl: z.string().url('serviceUrl must be a URL').optional(),
  channelId: z.string().optional(),
  conversation: z.looseObject({ id: z.string().min(1) }).optional(),
  from: z.looseObject({ id: z.string().min(1) }).optional(),
});

const optionalText = z.string().optional();

/**
 * Message activities must say where they came from and who sent them. Every field a reply copies
 * from the incoming activity (conversation, from and recipient, locale) is typed here too: botbuilder
 * refuses to send a reply whose copied fields have the wrong type, which would lose the turn silently.
 */
export const messageActivitySchema = activitySchema.extend({
  serviceUrl: z.url({
    protocol: /^https?$/,
    error: (issue) => (issue.input === undefined ? 'serviceUrl is required' : 'serviceUrl must be an http(s) URL'),
  }),
  conversation: z.looseObject(
    { id: z.string().min(1, 'conversation.id is required'), tenantId: optionalText, conversationType: optionalText, name: optionalText },
    { error: 'conversation is required' },
  ),
  from: z.looseObject(
    { id: z.string().min(1, 'from.id is required'), aadObjectId: optionalText, name: optionalText, role: optionalText },
    { error: 'from (the sender) is required' },
  ),
  recipient: z.looseObject({ id: z.string(), name: optionalText, role: optionalText }).optional(),
  text: optionalText,
  locale: optionalText,
  entities: z.array(z.looseObject({ type: optionalText })).optional(),
});

/**
 * Why a body posted to /api/messages cannot be a turn, or undefined when it can: the Activity
 * schemas above, worded for the 400 response. Nearly every body is a well-formed Activity, so the
 * fields are first checked by hand, strictly (anything the hand check is unsure of, the schemas
 * decide, and word the refusal): what the hand check accepts, the schemas accept too.
 */
export function validateActivity(body: unknown): string | undefined {
  if (plainlyValid(body)) return undefined;
  const base = activitySchema.safeParse(body);
  if (!base.success) return `Not a Bot Framework Activity: ${base.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`;
  if (base.data.type !== 'message') return undefined;
  const message = messageActivitySchema.safeParse(body);
  return message.success ? undefined : `A message Activity needs ${message.error.issues.map((i) => `${i.path.join('.') || 'body'} (${i.message})`).join(', ')}`;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isOptionalText = (value: unknown): boolean => value === undefined || typeof value === 'string';
const isId = (value: unknown): boolean => typeof value === 'string' && value.length > 0;
/** http(s), no whitespace anywhere (so nothing for the schema to trim or strip), and parseable. */
const isHttpUrl = (value: unknown): boolean => typeof value === 'string' && /^https?:\/\/\S+$/.test(value) && URL.canParse(value);

/** The schemas' checks by hand, for the common case; false means "let the schemas decide", not "invalid". */
function plainlyValid(body: unknown): boolean {
  if (!isRecord(body) || !isId(body.type) || !isOptionalText(body.channelId)) return false;
  const { conversation, from } = body;
  if (body.type !== 'message') {
    return (body.serviceUrl === undefined || isHttpUrl(body.serviceUrl))
      && (conversation === undefined || (isRecord(conversation) && isId(conversation.id)))
      && (from === undefined || (isRecord(from) && isId(from.id)));
  }
  const { recipient, entities } = body;
  return isHttpUrl(body.serviceUrl)
    && isRecord(conversation) && isId(conversation.id) && isOptionalText(conversation.tenantId) && isOptionalText(conversation.conversationType) && isOptionalText(conversation.name)
    && isRecord(from) && isId(from.id) && isOptionalText(from.aadObjectId) && isOptionalText(from.name) && isOptionalText(from.role)
    && (recipient === undefined || (isRecord(recipient) && typeof recipient.id === 'string' && isOptionalText(recipient.name) && isOptionalText(recipient.role)))
    && isOptionalText(body.text) && isOptionalText(body.locale)
    && (entities === undefined || (Array.isArray(entities) && entities.every((entity) => isRecord(entity) && isOptionalText(entity.type))));
}

export function toActivities(replies: Reply[]): Partial<Activity>[] {
  return replies.map((reply) =>
    reply.type === 'text'
      ? { type: ActivityTypes.Message, text: reply.text, textFormat: 'plain' }
      : { type: ActivityTypes.Message, attachments: [CardFactory.adaptiveCard(renderAdaptiveCard(reply.card))] },
  );
}

function platformOf(activity: Activity): Platform {
  return activity.channelId === 'playground' ? 'playground' : 'teams';
}

/** The text without the @mention of the bot (Teams puts it in channel messages). */
function textWithoutMention(activity: Activity): string {
  try {
    return (TurnContext.removeRecipientMention(activity) ?? activity.text ?? '').trim();
  } catch {
    // A malformed mention entity (or no recipient): the text as sent is still the message.
    return (activity.text ?? '').trim();
  }
}

/**
 * The conversation reference kept for proactive messages. Without activityId: it changes on every
 * message, so keeping it would make every turn rewrite the user record; a proactive message is a
 * new message, not a reply to an old one.
 */
function referenceFor(activity: Activity): Partial<ConversationReference> {
  const { activityId: _activityId, ...reference } = TurnContext.getConversationReference(activity);
  return reference;
}

export function toInbound(context: TurnContext): Inbound {
  const activity = context.activity;
  const value = activity.value;
  const submission = value && typeof value === 'object' ? submissionSchema.safeParse(value) : undefined;
  const tenantId: string | undefined = activity.conversation?.tenantId ?? (activity.channelData as { tenant?: { id?: string } } | undefined)?.tenant?.id;
  const conversationType = activity.conversation?.conversationType;
  const teamId: unknown = (activity.channelData as { team?: { id?: unknown } } | undefined)?.team?.id;
  return {
    platform: platformOf(activity),
    tenantId: activity.channelId === 'msteams' ? tenantId : undefined,
    user: { id: activity.from.aadObjectId ?? activity.from.id, name: activity.from.name },
    conversation: { id: activity.conversation.id, kind: conversationType === 'channel' ? 'channel' : conversationType === 'groupChat' ? 'group' : 'personal' },
    text: submission?.success ? undefined : textWithoutMention(activity),
    submission: submission?.success ? submission.data : undefined,
    ...(conversationType === 'channel' && typeof teamId === 'string' && tenantId && activity.channelId === 'msteams'
      ? { team: { id: teamId, access: { serviceUrl: activity.serviceUrl, tenantId, botId: activity.recipient?.id ?? '' } } }
      : {}),
    // Only personal conversations are kept for proactive messages: a channel reference would post to everyone.
    reference: conversationType === 'channel' || conversationType === 'groupChat' ? undefined : referenceFor(activity),
    // Files and images sent to the bot (card attachments are the bot's own, or a mention's).
    attachmentCount: Array.isArray(activity.attachments) ? activity.attachments.filter((a) => typeof a?.contentType === 'string' && !a.contentType.startsWith('application/vnd.microsoft.card') && a.contentType !== 'text/html').length : 0,
    correlationId: randomUUID(),
  };
}

export interface TeamsChannel {
  adapter: CloudAdapter;
  /** Handles POST /api/messages once the body is parsed and validated. */
  process(req: Request, res: Response): Promise<void>;
  send: PlatformSender;
}

export function createTeamsChannel(options: { settings: Settings; bot: Bot; log: Logger; roster?: Roster }): TeamsChannel {
  const { settings, bot, log, roster } = options;
  // Connector clients are kept and reused (src/adapters/teams/connector-clients.ts): proactive
  // ones without the client's own retries, so the outbox and the roster sync see a 429 themselves.
  const auth = new ReusedClientsAuthentication(new ConfigurationBotFrameworkAuthentication({
    MicrosoftAppId: settings.teams.appId ?? '',
    MicrosoftAppPassword: settings.teams.appPassword ?? '',
    MicrosoftAppType: settings.teams.appType,
    MicrosoftAppTenantId: settings.teams.tenantId ?? '',
  }));
  const adapter = new ValidatedCloudAdapter(auth);
  adapter.onTurnError = async (context, error) => {
    const reference = randomUUID();
    // Stack frames only: the error's message may quote what the user wrote.
    log.error({ correlationId: reference, err: { name: (error as Error).name, stack: error instanceof Error ? stackFrames(error) : undefined } }, 'teams turn failed');
    await context.sendActivity(`Sorry, something went wrong on our side. If it keeps happening, tell your IT team the reference ${reference}.`).catch(() => undefined);
  };

  const rosterHooks = roster && teamsRosterHooks({ roster, log });
  const answer = async (context: TurnContext) => {
    const { replies, updates } = await bot.respond(toInbound(context));
    if (replies.length > 0) await deliverReplies(teamsSurface(context, toActivities), replies, updates);
  };

  const logic = async (context: TurnContext) => {
    // Teams sends many activity types (conversationUpdate, typing, reactions, installationUpdate):
    // only messages (and card submissions, which arrive as messages) start a turn. An invoke nobody
    // handles is acknowledged with 200 (botbuilder's default is 501, which the channel counts as a bot failure).
    if (context.activity.type === ActivityTypes.Invoke) {
      await context.sendActivity({ type: ActivityTypes.InvokeResponse, value: { status: 200 } });
      return;
    }
    // Installs and membership changes keep the staff directory current (src/adapters/teams/roster.ts).
    if (context.activity.type === ActivityTypes.ConversationUpdate || context.activity.type === ActivityTypes.InstallationUpdate) {
      const askToConfirm = await rosterHooks?.event(context.activity);
      // Into the team's conversation, as the reply to its install event; a refusal there loses only the hint.
      if (askToConfirm) await context.sendActivity(confirmationPrompt(context.activity)).catch(() => undefined);
      // A personal install is welcomed with the help, as an empty message would be (Teams expects a welcome there).
      if (isPersonalInstallWelcome(context.activity)) await answer(context);
      return;
    }
    if (context.activity.type !== ActivityTypes.Message) return;
    await answer(context);
    // After the answer, so the turn's cost and latency are untouched: a channel of a team not followed yet gets followed.
    await rosterHooks?.messageSeen(context.activity);
  };

  roster?.register('teams', (source) => readTeamRoster(adapter, settings.teams.appId ?? '', source));

  const channel: TeamsChannel = {
    adapter,
    process: (req, res) => adapter.processValidated(req, res, logic),
    send: async (reference, replies, updates) => {
      // The adapter's turn-error handler would swallow a refusal (and post an apology into the
      // recipient's chat); catch it inside the turn and rethrow so the caller records a failure.
      // What is thrown is a DeliveryError classified from the connector's status and Retry-After
      // (429 throttled; 412, 5xx and network transient; 401, 403, 404 and the rest permanent).
      let refusal: unknown;
      try {
        // A proactive client does not retry by itself (connector-clients.ts): the outbox decides
        // instead, with one pause for the whole school.
        await adapter.continueConversationAsync(settings.teams.appId ?? '', reference as Partial<ConversationReference>, async (context) => {
          try {
            await deliverReplies(teamsSurface(context, toActivities), replies, updates);
          } catch (error) {
            refusal = error;
          }
        });
      } catch (error) {
        // Before any send: a reference the adapter cannot use, or credentials it cannot get.
        refusal ??= error;
      }
      if (refusal) throw classifyDeliveryFailure('Teams', refusal);
    },
  };
  // A roster member with no personal chat yet gets one on the first message (src/adapters/teams/roster.ts).
  return { ...channel, send: creatingPersonalChats(channel.send, { adapter, appId: settings.teams.appId ?? '', roster }) };
}
