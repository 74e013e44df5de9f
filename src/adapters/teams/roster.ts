/**
 * Teams' side of the staff directory: a team's roster read through the connector's members API
 * (GET /v3/conversations/{team id}/pagedmembers, with its continuation token) once a coordinator
 * confirmed the team as a staff team, the install and membership events that record a team and keep
 * a confirmed one current, and the personal chat created on the first proactive message
 * to a member who never wrote to the bot (Teams' documented proactive-install pattern:
 * POST /v3/conversations with that one member).
 */
import { TeamsInfo, TurnContext, type CloudAdapter, type ConversationParameters, type ConversationReference, type TeamsChannelAccount } from 'botbuilder';
import { z } from 'zod';
import { sourceIdOf, type Roster, type RosterMember, type RosterSource } from '../../bot/roster.ts';
import type { PlatformSender } from '../../bot/notifier.ts';
import { classifyDeliveryFailure } from '../../delivery/classify.ts';
import { DeliveryError } from '../../delivery/types.ts';
import type { Logger } from '../../logger.ts';

/**
 * Kept as a roster member's reference until a personal chat exists: enough for the sender to create
 * it. Replaced by the created conversation's reference after the first message.
 */
export const rosterReferenceSchema = z.object({
  kind: z.literal('teams-roster'),
  serviceUrl: z.url({ protocol: /^https?$/ }),
  tenantId: z.string().min(1).max(100),
  /** The member's Teams id (29:…) and AAD object id. */
  user: z.object({ id: z.string().min(1).max(200), aadObjectId: z.string().min(1).max(100) }),
  bot: z.object({ id: z.string().min(1).max(200) }),
});
type RosterReference = z.infer<typeof rosterReferenceSchema>;

function isRosterReference(reference: unknown): reference is RosterReference {
  return typeof reference === 'object' && reference !== null && (reference as { kind?: unknown }).kind === 'teams-roster';
}

const PAGE_SIZE = 500;
/** A bound on continuation tokens followed (500 a page: far beyond any school). */
const MAX_PAGES = 200;

const accountSchema = z.looseObject({
  id: z.string().min(1).max(200),
  aadObjectId: z.string().min(1).max(100),
  name: z.string().optional(),
  userRole: z.string().optional(),
});

/** A roster entry as a directory member, or undefined for one the bot cannot use (no AAD id, anonymous). */
function memberFrom(account: unknown, source: Pick<RosterSource, 'access'>): RosterMember | undefined {
  const parsed = accountSchema.safeParse(account);
  if (!parsed.success || parsed.data.userRole === 'anonymous') return undefined;
  const { id, aadObjectId, name } = parsed.data;
  const reference: RosterReference = {
    kind: 'teams-roster',
    serviceUrl: source.access.serviceUrl!,
    tenantId: source.access.tenantId!,
    user: { id, aadObjectId },
    bot: { id: source.access.botId! },
  };
  return { id: aadObjectId, ...(name?.trim() ? { name: name.trim().slice(0, 200) } : {}), reference };
}

/** Reads a team's whole roster, page by page. Throws a classified DeliveryError when the connector refuses. */
export async function readTeamRoster(adapter: CloudAdapter, appId: string, source: RosterSource): Promise<{ members: RosterMember[]; skipped: number }> {
  const members: RosterMember[] = [];
  let skipped = 0;
  let refusal: unknown;
  const reference: Partial<ConversationReference> = {
    channelId: 'msteams',
    serviceUrl: source.access.serviceUrl,
    conversation: { id: source.teamId, tenantId: source.access.tenantId, isGroup: true, conversationType: 'channel', name: '' },
    bot: { id: source.access.botId ?? '', name: '' },
  };
  try {
    // A proactive client does not retry by itself (connector-clients.ts): the sync job's backoff decides.
    await adapter.continueConversationAsync(appId, reference, async (context) => {
      // Caught here and thrown after: the adapter's turn-error handler would post an apology into the team.
      try {
        let token: string | undefined;
        for (let page = 0; page < MAX_PAGES; page++) {
          const result = await TeamsInfo.getPagedTeamMembers(context, source.teamId, PAGE_SIZE, token);
          for (const account of (result.members ?? []) as TeamsChannelAccount[]) {
            const member = memberFrom(account, source);
            if (member) members.push(member);
            else skipped++;
          }
          token = result.continuationToken || undefined;
          if (!token) break;
        }
      } catch (error) {
        refusal = error;
      }
    });
  } catch (error) {
    refusal ??= error;
  }
  if (refusal) throw classifyDeliveryFailure('Teams', refusal);
  return { members, skipped };
}

/**
 * Creates the bot's personal chat with a roster member (Teams answers with the existing one if there
 * is one) and returns its reference, for the sender to send into and the directory to keep.
 */
export async function createPersonalChat(adapter: CloudAdapter, appId: string, reference: RosterReference): Promise<Partial<ConversationReference>> {
  const parameters = {
    isGroup: false,
    bot: { id: reference.bot.id, name: '' },
    members: [{ id: reference.user.id, name: '' }],
    tenantId: reference.tenantId,
    channelData: { tenant: { id: reference.tenantId } },
  } as ConversationParameters;
  let created: Partial<ConversationReference> | undefined;
  try {
    await adapter.createConversationAsync(appId, 'msteams', reference.serviceUrl, undefined as unknown as string, parameters, async (context) => {
      const { activityId: _activityId, ...conversation } = TurnContext.getConversationReference(context.activity);
      created = { ...conversation, user: { id: reference.user.id, name: '', aadObjectId: reference.user.aadObjectId } };
    });
  } catch (error) {
    throw classifyDeliveryFailure('Teams', error);
  }
  if (!created?.conversation?.id) throw classifyDeliveryFailure('Teams', new Error('no conversation was created'));
  return created;
}

/**
 * The Teams sender, for any reference: a roster reference first gets its personal chat created,
 * saved through the roster (so the next message reuses it), and the message goes there.
 */
export function creatingPersonalChats(send: PlatformSender, deps: { adapter: CloudAdapter; appId: string; roster?: Roster }): PlatformSender {
  return async (stored, replies, updates) => {
    if (!isRosterReference(stored)) return send(stored, replies, updates);
    const member = rosterReferenceSchema.safeParse(stored);
    if (!member.success) throw new DeliveryError('permanent', 'Teams: the stored roster reference is not usable');
    const reference = await createPersonalChat(deps.adapter, deps.appId, member.data);
    // Saved before sending: a send that fails still leaves the chat known for the retry.
    await deps.roster?.rememberConversation('teams', member.data.tenantId, member.data.user.aadObjectId, reference);
    return send(reference, replies, updates);
  };
}

const memberEntrySchema = z.looseObject({ id: z.string().min(1).max(200), aadObjectId: z.string().min(1).max(100).optional() });

/** The fields of a conversationUpdate or installationUpdate the roster uses; anything else passes untouched. */
const rosterEventSchema = z.looseObject({
  type: z.enum(['conversationUpdate', 'installationUpdate']),
  channelId: z.literal('msteams'),
  serviceUrl: z.url({ protocol: /^https?$/ }),
  action: z.string().optional(),
  recipient: z.looseObject({ id: z.string().min(1).max(200) }),
  conversation: z.looseObject({ id: z.string().min(1), tenantId: z.string().min(1).optional() }),
  channelData: z.looseObject({
    team: z.looseObject({ id: z.string().min(1).max(300) }).optional(),
    tenant: z.looseObject({ id: z.string().min(1).optional() }).optional(),
  }).optional(),
  membersAdded: z.array(z.unknown()).optional(),
  membersRemoved: z.array(z.unknown()).optional(),
});

const entries = (list: unknown[] | undefined) =>
  (list ?? []).flatMap((entry) => {
    const parsed = memberEntrySchema.safeParse(entry);
    return parsed.success ? [parsed.data] : [];
  });

/**
 * Handles a team's install and membership events. A team is recorded (its reference kept on the
 * school, so "sync staff" typed in it can confirm and read it) but, until a coordinator confirms it
 * as a staff team, never read and its joiners never added: it may be a class team of pupils. For a
 * confirmed team, joiners schedule a sync job and removed members are marked as left. Costs a cached
 * tenant lookup and a write or two; the roster itself is read by the job. Never throws: a failure is
 * logged (ids and names never) and the turn answers 200. Says whether the team is recorded after it
 * (undefined: not a team event, or nothing could be stored) and whether to ask, in the team, for a
 * coordinator's confirmation (the bot has just joined a team not confirmed).
 */
async function handleTeamsRosterEvent(activity: unknown, deps: { roster: Roster; log: Logger }): Promise<{ teamId: string; followed: boolean; askToConfirm?: boolean } | undefined> {
  const { roster, log } = deps;
  const parsed = rosterEventSchema.safeParse(activity);
  if (!parsed.success) return undefined;
  const event = parsed.data;
  const teamId = event.channelData?.team?.id;
  const tenantId = event.conversation.tenantId ?? event.channelData?.tenant?.id;
  if (!teamId || !tenantId) return undefined; // a personal or group chat: no team roster to read
  try {
    const school = await roster.schoolFor('teams', tenantId);
    if (!school) {
      log.info({ event: event.type }, 'teams roster event from a tenant that is not registered; nothing stored');
      return undefined;
    }
    const botId = event.recipient.id;
    const added = entries(event.membersAdded);
    const removed = entries(event.membersRemoved);
    const action = event.action ?? '';
    if (removed.some((m) => m.id === botId) || (event.type === 'installationUpdate' && action.startsWith('remove'))) {
      await roster.removeSource(school, 'teams', teamId);
      log.info({ school }, 'bot removed from a team; its roster is no longer followed');
      return { teamId, followed: false };
    }
    const { confirmed } = await roster.recordSource(school, { platform: 'teams', teamId, access: { serviceUrl: event.serviceUrl, tenantId, botId } });
    if (!confirmed) {
      log.info({ school }, 'teams roster event from a team not confirmed as a staff team; nobody added');
      // Teams sends a conversationUpdate (the bot among the members added) and an installationUpdate for one install: one prompt.
      return { teamId, followed: true, askToConfirm: event.type === 'conversationUpdate' && added.some((m) => m.id === botId) };
    }
    if (added.length > 0 || (event.type === 'installationUpdate' && action.startsWith('add'))) await roster.scheduleSync(school, sourceIdOf('teams', teamId));
    const left = removed.flatMap((m) => (m.aadObjectId ? [m.aadObjectId] : []));
    if (left.length > 0) await roster.markLeft(school, left);
    return { teamId, followed: true };
  } catch (error) {
    log.warn({ event: event.type, err: { name: (error as Error).name } }, 'teams roster event not handled');
    return undefined;
  }
}

/** Posted in a team the bot has just joined: a team is read only once a coordinator confirms it there. */
export function confirmationPrompt(activity: unknown): string {
  const name = (activity as { recipient?: { name?: unknown } } | undefined)?.recipient?.name;
  const mention = typeof name === 'string' && name.trim() ? name.trim().slice(0, 100) : 'E-safety';
  return `Thanks for adding me. If this is a staff team (never a class team with pupils in it), a coordinator can type "@${mention} sync staff" here to add its members to the school's staff directory. Until then I add nobody from this team.`;
}

/** A personal-scope install: the person's own chat with the bot, as Teams announces it. */
const personalInstallSchema = z.looseObject({
  type: z.enum(['conversationUpdate', 'installationUpdate']),
  channelId: z.literal('msteams'),
  serviceUrl: z.url({ protocol: /^https?$/ }),
  action: z.string().optional(),
  from: z.looseObject({ id: z.string().min(1).max(200), aadObjectId: z.string().min(1).max(100), name: z.string().optional() }),
  recipient: z.looseObject({ id: z.string().min(1).max(200) }),
  conversation: z.looseObject({ id: z.string().min(1), conversationType: z.literal('personal'), tenantId: z.string().min(1).optional() }),
  channelData: z.looseObject({ tenant: z.looseObject({ id: z.string().min(1).optional() }).optional() }).optional(),
  membersAdded: z.array(z.unknown()).optional(),
});

/**
 * The bot added to someone's personal scope (conversationUpdate with the bot among membersAdded):
 * Teams' moment for a welcome, sent once per install. The installationUpdate that comes with it
 * records the person too, but does not welcome them again.
 */
export function isPersonalInstallWelcome(activity: unknown): boolean {
  const parsed = personalInstallSchema.safeParse(activity);
  return parsed.success && parsed.data.type === 'conversationUpdate' && entries(parsed.data.membersAdded).some((m) => m.id === parsed.data.recipient.id);
}

/**
 * Records the person who installed the app for themselves, with their personal chat's reference, in
 * their tenant's school: proactive messages then reach them without creating a chat. Either event of
 * the install does it (the second writes nothing). A tenant that is not registered stores nothing.
 */
async function handleTeamsPersonalInstall(activity: unknown, deps: { roster: Roster; log: Logger }): Promise<void> {
  const parsed = personalInstallSchema.safeParse(activity);
  if (!parsed.success) return;
  const event = parsed.data;
  const installed = event.type === 'installationUpdate'
    ? (event.action ?? '').startsWith('add')
    : entries(event.membersAdded).some((m) => m.id === event.recipient.id);
  const tenantId = event.conversation.tenantId ?? event.channelData?.tenant?.id;
  if (!installed || !tenantId) return;
  try {
    const school = await deps.roster.schoolFor('teams', tenantId);
    if (!school) {
      deps.log.info({ event: event.type }, 'personal install from a tenant that is not registered; nothing stored');
      return;
    }
    // The same reference a message in this chat gives (the Teams adapter's), so the first message rewrites nothing.
    const { activityId: _activityId, ...reference } = TurnContext.getConversationReference(event as never);
    // The name as a message's turn records it, for the same reason.
    await deps.roster.notePersonalConversation(school, 'teams', { id: event.from.aadObjectId, ...(event.from.name ? { name: event.from.name } : {}), reference });
    deps.log.info({ school }, 'personal install recorded');
  } catch (error) {
    deps.log.warn({ event: event.type, err: { name: (error as Error).name } }, 'personal install not recorded');
  }
}

/**
 * The Teams adapter's roster hooks: install and membership events, and the channel messages that
 * reveal a team the bot is in but does not follow (it joined before its tenant was registered, so
 * its install event stored nothing). Teams known to be followed are kept in memory, so a channel
 * message costs no store operation; an unknown team costs one read (of its source) once per
 * process, after the turn has answered.
 */
export function teamsRosterHooks(deps: { roster: Roster; log: Logger }) {
  const { roster, log } = deps;
  const followed = new Set<string>();
  const checking = new Map<string, Promise<void>>();
  const remember = (teamId: string) => {
    if (followed.size > 10_000) followed.clear();
    followed.add(teamId);
  };

  async function follow(teamId: string, tenantId: string, access: Record<string, string>): Promise<void> {
    try {
      const school = await roster.schoolFor('teams', tenantId);
      // Not registered yet: looked at again on a later message (the tenant lookup is the directory's, cached).
      if (!school) return;
      // Recorded as a candidate only: a coordinator's "sync staff" in one of its channels confirms and reads it.
      if (await roster.noteSource(school, { platform: 'teams', teamId, access })) {
        log.info({ school }, 'a team the bot was already in is now recorded, to be confirmed as a staff team');
      }
      remember(teamId);
    } catch (error) {
      log.warn({ err: { name: (error as Error).name } }, 'team of a channel message not followed');
    }
  }

  return {
    /**
     * conversationUpdate and installationUpdate: a team's membership, or a personal install. True
     * when the bot has just joined a team not confirmed as a staff team (the adapter posts confirmationPrompt there).
     */
    async event(activity: unknown): Promise<boolean> {
      const team = await handleTeamsRosterEvent(activity, deps);
      if (team?.followed) remember(team.teamId);
      else if (team) followed.delete(team.teamId);
      else await handleTeamsPersonalInstall(activity, deps);
      return team?.askToConfirm === true;
    },
    /** A message (after its turn): a channel message from a team not recorded yet records it as a candidate. Never throws. */
    messageSeen(activity: unknown): Promise<void> {
      const a = activity as { conversation?: { conversationType?: unknown }; channelData?: { team?: { id?: unknown } } } | undefined;
      const teamId = a?.channelData?.team?.id;
      if (a?.conversation?.conversationType !== 'channel' || typeof teamId !== 'string' || followed.has(teamId)) return Promise.resolve();
      const parsed = channelMessageSchema.safeParse(activity);
      if (!parsed.success) return Promise.resolve();
      const message = parsed.data;
      const tenantId = message.conversation.tenantId ?? message.channelData.tenant?.id;
      if (!tenantId) return Promise.resolve();
      // Several messages at once from one unknown team make one check.
      let check = checking.get(teamId);
      if (!check) {
        check = follow(teamId, tenantId, { serviceUrl: message.serviceUrl, tenantId, botId: message.recipient.id }).finally(() => checking.delete(teamId));
        checking.set(teamId, check);
      }
      return check;
    },
  };
}

const channelMessageSchema = z.looseObject({
  channelId: z.literal('msteams'),
  serviceUrl: z.url({ protocol: /^https?$/ }),
  recipient: z.looseObject({ id: z.string().min(1).max(200) }),
  conversation: z.looseObject({ conversationType: z.literal('channel'), tenantId: z.string().min(1).optional() }),
  channelData: z.looseObject({
    team: z.looseObject({ id: z.string().min(1).max(300) }),
    tenant: z.looseObject({ id: z.string().min(1).optional() }).optional(),
  }),
});
