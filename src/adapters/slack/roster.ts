/**
 * Slack's side of the staff directory: the workspace's members through users.list (200 a page,
 * following the cursor), read when the app is installed or first used, and kept current by the
 * `team_join` and `user_change` events. Bots, Slackbot and deactivated accounts never become staff to
 * message (a deactivated account already in the directory is marked as left, its roles kept).
 *
 * users.list is a Tier 2 method (about 20 calls a minute): a 429 waits for its Retry-After and goes
 * on from the same cursor, for at most a minute of waiting in one read (then the sync job retries).
 * All of it runs off the request path (Bolt acknowledges within 3 s first).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { App, webApi } from '@slack/bolt';
import { sourceIdOf, type Roster, type RosterMember, type RosterSource } from '../../bot/roster.ts';
import type { Logger } from '../../logger.ts';
import { classifyDeliveryFailure } from '../../delivery/classify.ts';
import { backoffMs } from '../../delivery/limits.ts';
import type { SlackReference } from './delivery.ts';

type Loose = Record<string, unknown>;
const obj = (value: unknown): Loose | undefined => (value && typeof value === 'object' && !Array.isArray(value) ? (value as Loose) : undefined);
const str = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value : undefined);

const PAGE_SIZE = 200;
const MAX_PAGES = 500;
/**
 * How long one read waits out rate limits in all before giving up with the throttled error: the
 * sync job then tries again later, and a coordinator's "sync staff" (which reads inline) answers
 * within about a minute instead of hanging while Slack keeps asking it to slow down.
 */
export const MAX_TOTAL_WAIT_MS = 60_000;

/** A users.list (or team_join, user_change) user as a directory member; undefined for bots and Slackbot. */
export function slackMemberFrom(user: unknown, workspace: { teamId: string; enterpriseId?: string }): RosterMember | undefined {
  const u = obj(user);
  const id = str(u?.id);
  if (!u || !id || !/^[UW][A-Z0-9]{1,39}$/.test(id) || id === 'USLACKBOT' || u.is_bot === true || u.is_app_user === true) return undefined;
  const profile = obj(u.profile);
  const name = (str(u.real_name) ?? str(profile?.real_name) ?? str(profile?.display_name) ?? str(u.name))?.trim().slice(0, 200);
  if (u.deleted === true) return { id, ...(name ? { name } : {}), left: true };
  const reference: SlackReference = { teamId: workspace.teamId, ...(workspace.enterpriseId ? { enterpriseId: workspace.enterpriseId } : {}), userId: id };
  return { id, ...(name ? { name } : {}), reference };
}

/** Reads the workspace's whole membership. Throws a classified DeliveryError when Slack refuses. */
export async function readSlackUsers(
  deps: { client: webApi.WebClient; token: string; wait?: (ms: number) => Promise<unknown> },
  source: Pick<RosterSource, 'teamId' | 'access'>,
): Promise<{ members: RosterMember[]; skipped: number }> {
  const wait = deps.wait ?? ((ms: number) => sleep(ms));
  const workspace = { teamId: source.teamId, enterpriseId: source.access.enterpriseId };
  const members: RosterMember[] = [];
  let skipped = 0;
  let cursor: string | undefined;
  let waits = 0;
  let waited = 0;
  for (let page = 0; page < MAX_PAGES; ) {
    let result: Loose;
    try {
      result = (await deps.client.users.list({ token: deps.token, limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) })) as unknown as Loose;
    } catch (error) {
      const refusal = classifyDeliveryFailure('Slack users.list', error);
      const pause = refusal.retryAfterMs ?? backoffMs(waits + 1, 1000, 64_000);
      if (refusal.kind !== 'throttled' || waited + pause > MAX_TOTAL_WAIT_MS) throw refusal;
      waits++;
      waited += pause;
      await wait(pause);
      continue; // the same page again
    }
    page++;
    for (const user of Array.isArray(result.members) ? result.members : []) {
      const member = slackMemberFrom(user, workspace);
      if (member) members.push(member);
      else skipped++;
    }
    cursor = str(obj(result.response_metadata)?.next_cursor);
    if (!cursor) break;
  }
  return { members, skipped };
}

/** Events that say the app left the workspace. */
const REMOVAL_EVENTS = new Set(['app_uninstalled', 'tokens_revoked']);

/**
 * The hooks the Slack channel calls: a workspace seen (its first request here starts a sync: the
 * "first use" of a single-token install), an OAuth install finished, and the membership events.
 */
export function slackRosterHooks(deps: { roster: Roster; log: Logger }) {
  const { roster, log } = deps;
  const followed = new Set<string>();
  /** Workspaces not linked to a school, and when to look again (a registration may come at any time). */
  const unlinkedUntil = new Map<string, number>();
  /** Workspaces the app was uninstalled from in this process: not followed again until an install. */
  const uninstalled = new Set<string>();

  async function follow(teamId: string, enterpriseId: string | undefined, force: boolean): Promise<string | undefined> {
    if (uninstalled.has(teamId)) return undefined;
    const school = await roster.schoolFor('slack', teamId);
    if (!school) {
      if (unlinkedUntil.size > 10_000) unlinkedUntil.clear();
      unlinkedUntil.set(teamId, Date.now() + 10 * 60_000);
      return undefined;
    }
    const isNew = await roster.noteSource(school, { platform: 'slack', teamId, access: enterpriseId ? { enterpriseId } : {} });
    followed.add(teamId);
    if (isNew || force) await roster.scheduleSync(school, sourceIdOf('slack', teamId));
    return school;
  }

  const quietly = async (what: string, work: () => Promise<unknown>) => {
    try {
      await work();
    } catch (error) {
      log.warn({ what, err: { name: (error as Error).name } }, 'slack roster update failed');
    }
  };

  return {
    /** Any request from a workspace; the events announcing the app's removal do not count as a use (they would follow it again). */
    workspaceSeen: (teamId: string | undefined, enterpriseId: string | undefined, eventType?: string): Promise<void> => {
      if (!teamId || followed.has(teamId) || (unlinkedUntil.get(teamId) ?? 0) > Date.now() || REMOVAL_EVENTS.has(eventType ?? '')) return Promise.resolve();
      return quietly('workspace seen', () => follow(teamId, enterpriseId, false));
    },
    installed: (teamId: string | undefined, enterpriseId: string | undefined): Promise<void> => {
      if (!teamId) return Promise.resolve();
      uninstalled.delete(teamId);
      return quietly('installed', () => follow(teamId, enterpriseId, true));
    },
    /**
     * app_uninstalled, or the bot token revoked: the workspace's source is marked removed and its
     * pending sync cancelled. Its people stay in the directory with their roles (the audit trail
     * names them); an install follows it again.
     */
    uninstalled: (teamId: string | undefined): Promise<void> => {
      if (!teamId) return Promise.resolve();
      uninstalled.add(teamId);
      followed.delete(teamId);
      return quietly('uninstalled', async () => {
        const school = await roster.schoolFor('slack', teamId);
        if (school) await roster.removeSource(school, 'slack', teamId);
      });
    },
    /** team_join and user_change carry the whole user: applied as they come, no users.list needed. */
    registerEvents(app: App): void {
      for (const type of ['team_join', 'user_change'] as const) {
        app.event(type, async ({ event, context, body }) => {
          const teamId = str((context as Loose).teamId) ?? str((body as unknown as Loose).team_id);
          const enterpriseId = str((context as Loose).enterpriseId);
          if (!teamId) return;
          await quietly(type, async () => {
            const school = await follow(teamId, enterpriseId, false);
            const member = slackMemberFrom(obj(event)?.user, { teamId, enterpriseId });
            if (school && member) await roster.apply(school, 'slack', [member]);
          });
        });
      }
    },
  };
}
