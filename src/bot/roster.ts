/**
 * The staff directory filled from the platforms' rosters, not only from people who message the bot:
 * a Teams team the bot is installed in (its members through the connector) and a Slack workspace
 * (users.list). Alerts and acknowledgement requests go to everyone in the directory, so staff who
 * never wrote to the bot are reached too.
 *
 * Safeguarding: a Teams team may be a class team, full of pupils, and everyone in the directory is
 * sent staff alerts and the staff policies. So a team the bot joins is only a candidate: it is read
 * once a coordinator confirms it as a staff team ("sync staff" typed in one of its channels). A Slack
 * workspace is a school's staff workspace in practice, and is read without confirmation.
 *
 * Platform-neutral: each adapter registers a reader for its platform and tells the roster when an
 * installation or a membership changes. Syncs run as durable jobs (off the turn path, once across
 * instances, retried), or at a coordinator's request ("sync staff"). A sync lists the school's users
 * once, compares, and writes only the records that change. It never removes anyone's roles, personal
 * conversation or first-seen date: a roster only adds people, names them, gives a way to reach those
 * the bot cannot reach yet, and marks those who left.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isAppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { JobScheduler } from '../delivery/types.ts';
import { DeliveryError } from '../delivery/types.ts';
import { mutate } from '../delivery/store-helpers.ts';
import type { Store } from '../store/store.ts';
import type { Directory, UserRecord } from './directory.ts';

export type RosterPlatform = 'teams' | 'slack';

/** One person as a platform's roster lists them. */
export interface RosterMember {
  /** The directory's user id (Teams: the AAD object id; Slack: the U… id). */
  id: string;
  name?: string;
  /** How the platform's sender reaches them with no conversation yet; kept only where the record has none. */
  reference?: unknown;
  /** No longer in the workspace (a deactivated Slack account): marked, never deleted. */
  left?: boolean;
}

/** A team or workspace whose roster the school's directory follows (record kind `roster-source`). */
export interface RosterSource {
  /** `teams:<team id>` or `slack:<team id>`. */
  id: string;
  platform: RosterPlatform;
  teamId: string;
  /** What the platform's reader needs to read it again (Teams: service URL, tenant, the bot's id). No names. */
  access: Record<string, string>;
  addedAt: string;
  /** The bot was removed from the team (or the app uninstalled): not read any more. */
  removedAt?: string;
  /**
   * The coordinator (user id) who confirmed a Teams team as a staff team, and when: until then the
   * team is a candidate, never read. Not carried over when the bot is added again after a removal:
   * the team is a candidate again. Slack workspaces need none (see isConfirmed).
   */
  confirmedBy?: string;
  confirmedAt?: string;
  lastSync?: SyncCounts & { at: string };
}

export interface SyncCounts {
  added: number;
  updated: number;
  unchanged: number;
  /** Entries that were not people the bot can use (no id, a bot account). */
  skipped: number;
}

/** Reads a team's or workspace's whole roster. Throws a DeliveryError (its kind says whether to try again) when the platform refuses. */
export type RosterReader = (source: RosterSource) => Promise<{ members: RosterMember[]; skipped: number }>;

export interface SourceSyncResult {
  source: RosterSource;
  counts?: SyncCounts;
  /** Why it could not be read (fixed wording, never the platform's text). */
  failure?: string;
}

/** Whether the source's members may be added as staff: a Slack workspace always, a Teams team once a coordinator confirmed it. */
function isConfirmed(source: Pick<RosterSource, 'platform' | 'confirmedAt'>): boolean {
  return source.platform === 'slack' || source.confirmedAt !== undefined;
}

/** Fixed wording: the "sync staff" reply and the logs name it. */
const NOT_CONFIRMED = 'not confirmed as a staff team';

/** A source's id: `teams:<team id>` or `slack:<team id>`. */
export const sourceIdOf = (platform: RosterPlatform, teamId: string) => `${platform}:${teamId}`;
const sourceKey = (school: string, id: string) => ({ kind: 'roster-source', school, id });
const SYNC_JOB = 'roster.sync';
/** The id of a source's pending sync job: one per source, so a burst of events makes one job. */
export const syncJobId = (sourceId: string) => `roster.sync.${createHash('sha256').update(sourceId).digest('hex').slice(0, 32)}`;
const syncPayloadSchema = z.object({ source: z.string().min(1).max(300) });

export class Roster {
  readonly #readers = new Map<RosterPlatform, RosterReader>();
  readonly #directory: Directory;
  readonly #store: Store;
  readonly #jobs: JobScheduler | undefined;
  readonly #log: Logger;

  constructor(deps: { directory: Directory; store: Store; jobs?: JobScheduler; log: Logger }) {
    this.#directory = deps.directory;
    this.#store = deps.store;
    this.#jobs = deps.jobs;
    this.#log = deps.log;
  }

  register(platform: RosterPlatform, reader: RosterReader): void {
    this.#readers.set(platform, reader);
  }

  /** The school a Teams tenant or Slack workspace belongs to; undefined (store nothing) when not registered. */
  schoolFor(platform: RosterPlatform, tenantId: string): Promise<string | undefined> {
    return this.#directory.schoolForTenant(platform, tenantId);
  }

  /**
   * Records that the bot is in this team or workspace (written only when new, changed or back after
   * a removal). True when it was not followed before: the caller then asks for a sync.
   */
  async noteSource(school: string, source: Pick<RosterSource, 'platform' | 'teamId' | 'access'>): Promise<boolean> {
    return (await this.recordSource(school, source)).isNew;
  }

  /**
   * As noteSource, also saying whether the source is confirmed (a new Teams team, or one back after
   * a removal, is a candidate): the caller reads or changes its members only when it is.
   */
  async recordSource(school: string, source: Pick<RosterSource, 'platform' | 'teamId' | 'access'>): Promise<{ isNew: boolean; confirmed: boolean }> {
    const id = sourceIdOf(source.platform, source.teamId);
    let isNew = false;
    const stored = await mutate<RosterSource>(this.#store, sourceKey(school, id), (current) => {
      isNew = !current || current.removedAt !== undefined;
      // What is given adds to (or corrects) what is known: "sync staff" in Slack knows only the workspace.
      const access = { ...current?.access, ...source.access };
      if (current && !isNew && JSON.stringify(current.access) === JSON.stringify(access)) return undefined;
      // Back after a removal: the team may have been reused or removed on purpose, so it is confirmed again or not at all.
      const { removedAt: _removedAt, confirmedBy: _by, confirmedAt: _at, ...kept } = current ?? ({} as Partial<RosterSource>);
      const confirmation = current && !isNew && current.confirmedAt ? { confirmedBy: current.confirmedBy, confirmedAt: current.confirmedAt } : {};
      return { ...kept, ...confirmation, id, platform: source.platform, teamId: source.teamId, access, addedAt: isNew ? new Date().toISOString() : current!.addedAt };
    });
    return { isNew, confirmed: stored ? isConfirmed(stored.data) : false };
  }

  /**
   * A coordinator confirmed the team as a staff team: from now on it is synced and its joiners are
   * added. True when it was not confirmed before (the caller audits it). Undefined when there is no
   * such source (or it was removed).
   */
  async confirmSource(school: string, sourceId: string, coordinatorId: string): Promise<boolean | undefined> {
    let newly: boolean | undefined;
    await mutate<RosterSource>(this.#store, sourceKey(school, sourceId), (current) => {
      newly = current && !current.removedAt ? !current.confirmedAt : undefined;
      return newly ? { ...current!, confirmedBy: coordinatorId, confirmedAt: new Date().toISOString() } : undefined;
    });
    return newly;
  }

  /**
   * The bot left the team, or the app was uninstalled: the source is kept (with when) but not read
   * again, and a sync already scheduled for it is cancelled. People it brought stay, with their roles.
   */
  async removeSource(school: string, platform: RosterPlatform, teamId: string): Promise<void> {
    const id = sourceIdOf(platform, teamId);
    await mutate<RosterSource>(this.#store, sourceKey(school, id), (current) =>
      current && !current.removedAt ? { ...current, removedAt: new Date().toISOString() } : undefined,
    );
    // A job left behind would find the source removed and do nothing; cancelling it saves the run.
    await this.#jobs?.cancel(school, syncJobId(id));
  }

  /** Teams the bot is in that no coordinator has confirmed as staff teams (never read). */
  async candidates(school: string): Promise<RosterSource[]> {
    return (await this.sources(school)).filter((source) => !source.removedAt && !isConfirmed(source));
  }

  async sources(school: string): Promise<RosterSource[]> {
    return (await this.#store.list<RosterSource>('roster-source', school)).map((record) => record.data);
  }

  /** Asks for a sync of one source off the turn path: a durable job (a burst of events makes one job, not many). */
  async scheduleSync(school: string, sourceId: string): Promise<void> {
    if (!this.#jobs) return;
    await this.#jobs.schedule({ school, id: syncJobId(sourceId), kind: SYNC_JOB, runAt: new Date(), payload: { source: sourceId } });
  }

  /**
   * The sync job: a refusal no retry can fix (403, a removed installation) is logged and dropped;
   * a transient one or a 429 is thrown, so the job runner tries again later with backoff.
   */
  registerJobs(jobs: JobScheduler): void {
    jobs.register<unknown>(SYNC_JOB, async (job) => {
      const { source } = syncPayloadSchema.parse(job.payload);
      const result = await this.syncSource(job.school, source);
      // A candidate (not confirmed) has no error: nothing to try again until a coordinator confirms it.
      if (result?.error && result.error.kind !== 'permanent') throw result.error;
    });
  }

  /**
   * Reads every confirmed team or workspace of the school and applies what it finds ("sync staff");
   * candidates are left alone. A source the platform did not answer for gets a sync job, so the
   * reply's "it will be tried again" holds.
   */
  async syncSchool(school: string): Promise<SourceSyncResult[]> {
    const results: SourceSyncResult[] = [];
    for (const source of await this.sources(school)) {
      if (source.removedAt || !isConfirmed(source) || !this.#readers.has(source.platform)) continue;
      const result = await this.syncSource(school, source.id);
      if (!result) continue;
      if (result.error && result.error.kind !== 'permanent') await this.scheduleSync(school, source.id);
      results.push({ source: result.source, counts: result.counts, failure: result.failure });
    }
    return results;
  }

  /**
   * Reads one source and applies it. Undefined when there is no such source (or it was removed, or
   * no reader runs here); a failure saying NOT_CONFIRMED, with the roster unread, for a candidate.
   */
  async syncSource(school: string, sourceId: string): Promise<(SourceSyncResult & { error?: DeliveryError }) | undefined> {
    const stored = await this.#store.get<RosterSource>(sourceKey(school, sourceId));
    const source = stored?.data;
    const reader = source && this.#readers.get(source.platform);
    if (!source || source.removedAt || !reader) return undefined;
    if (!isConfirmed(source)) {
      this.#log.info({ school, platform: source.platform }, 'roster not read: not confirmed as a staff team');
      return { source, failure: NOT_CONFIRMED };
    }
    let read: Awaited<ReturnType<RosterReader>>;
    try {
      read = await reader(source);
    } catch (error) {
      const classified = error instanceof DeliveryError ? error : new DeliveryError('transient', `${source.platform}: the roster could not be read`, { cause: error });
      // The kind and status only: a platform's error text may name people or the team.
      this.#log.warn({ school, platform: source.platform, kind: classified.kind, status: classified.status }, 'roster not read');
      const failure = classified.kind === 'permanent'
        ? 'the platform refused to list its members'
        : this.#jobs ? 'the platform did not answer; it will be tried again' : 'the platform did not answer; try again later';
      return { source, failure, error: classified };
    }
    const counts = await this.apply(school, source.platform, read.members);
    counts.skipped += read.skipped;
    const at = new Date().toISOString();
    await mutate<RosterSource>(this.#store, sourceKey(school, sourceId), (current) => (current ? { ...current, lastSync: { ...counts, at } } : undefined));
    this.#log.info({ school, platform: source.platform, ...counts }, 'roster synced');
    return { source, counts };
  }

  /**
   * Adds or updates the members in the school's directory: one listing, then a write only for those
   * that change. Roles, an existing conversation reference and firstSeen are never touched.
   */
  async apply(school: string, platform: RosterPlatform, members: RosterMember[]): Promise<SyncCounts> {
    const counts: SyncCounts = { added: 0, updated: 0, unchanged: 0, skipped: 0 };
    // A handful (one joiner) is cheaper by point reads than by listing a whole school.
    const known = members.length > 20 ? new Map((await this.#directory.listUserRecords(school)).map((record) => [record.id, record])) : undefined;
    const seen = new Set<string>();
    for (const member of members) {
      if (seen.has(member.id)) continue;
      seen.add(member.id);
      const outcome = await this.#directory.changeUser(school, member.id, (current) => merged(current, member, platform), known ? (known.get(member.id) ?? null) : undefined);
      if (outcome === 'created') counts.added++;
      else if (outcome === 'updated') counts.updated++;
      else counts.unchanged++;
    }
    return counts;
  }

  /** People removed from a team: marked as left (never deleted: their roles and the audit trail stay). */
  async markLeft(school: string, userIds: string[]): Promise<number> {
    let marked = 0;
    for (const id of userIds) {
      const outcome = await this.#directory.changeUser(school, id, (current) => (current && !current.leftAt ? { ...current, leftAt: new Date().toISOString() } : undefined));
      if (outcome === 'updated') marked++;
    }
    return marked;
  }

  /**
   * Someone installed the app for themselves (a personal chat the bot can now message): recorded as
   * a message from them would be (Directory.noteUserSeen), so their first message writes nothing.
   * Roles, first-seen and "left" are kept: a team's roster says who left.
   */
  async notePersonalConversation(school: string, platform: RosterPlatform, person: { id: string; name?: string; reference: unknown }): Promise<void> {
    await this.#directory.noteUserSeen(school, { ...person, platform });
  }

  /**
   * A sender created the person's personal conversation (they had only a roster reference): keep
   * its reference so later messages reuse it rather than create it again.
   */
  async rememberConversation(platform: RosterPlatform, tenantId: string, userId: string, reference: unknown): Promise<void> {
    try {
      const school = await this.schoolFor(platform, tenantId);
      if (!school) return;
      const json = JSON.stringify(reference);
      await this.#directory.changeUser(school, userId, (current) => (current && JSON.stringify(current.reference) !== json ? { ...current, platform, reference } : undefined));
    } catch (error) {
      // The message goes anyway; the next one creates the conversation again (Teams answers with the same one).
      this.#log.warn({ platform, code: isAppError(error) ? error.code : undefined, err: { name: (error as Error).name } }, 'created conversation not remembered');
    }
  }
}

/** The record after a roster saw the member, or undefined when nothing changes. */
function merged(current: UserRecord | undefined, member: RosterMember, platform: RosterPlatform): UserRecord | undefined {
  const now = new Date().toISOString();
  if (!current) {
    return {
      id: member.id,
      platform,
      ...(member.name ? { name: member.name } : {}),
      roles: [],
      ...(member.reference !== undefined ? { reference: member.reference } : {}),
      firstSeen: now,
      lastSeen: now,
      ...(member.left ? { leftAt: now } : {}),
    };
  }
  const next: UserRecord = { ...current };
  let changed = false;
  if (member.name && member.name !== current.name) {
    next.name = member.name;
    changed = true;
  }
  // A reference the bot already has (a personal chat, or an earlier roster's) is never replaced: it is as good or better.
  if (current.reference === undefined && member.reference !== undefined) {
    next.reference = member.reference;
    next.platform = platform;
    changed = true;
  }
  if (member.left && !current.leftAt) {
    next.leftAt = now;
    changed = true;
  } else if (!member.left && current.leftAt) {
    delete next.leftAt;
    changed = true;
  }
  return changed ? next : undefined;
}
