/**
 * Schools, their platform mappings, and the people the bot has met (roles and the conversation
 * reference needed to message them later).
 *
 * What a turn reads here, and how stale it may be:
 * - users (roles): cached for at most `cacheSeconds` (ROLE_CACHE_SECONDS, at most 60), then read
 *   again on the turn that needs them, so a role revoked on any instance stops working on every
 *   instance within that time. Never served past it.
 * - registered schools and tenant mappings (not security data: mappings are only ever added, and a
 *   school's name or time zone may lag a little): once read, served from memory; while a background
 *   refresher runs (`startRefresh`, started by the server) they are re-read off the turn path every
 *   interval, so no turn ever reads them again. Without a refresher (command line, terminal chat)
 *   they expire after `cacheSeconds` like users. A tenant or school that is not registered is
 *   remembered for `cacheSeconds` only, so a registration elsewhere is seen within that time.
 */
import { z } from 'zod';
import { AppError, isAppError } from '../errors.ts';
import { isRace } from '../delivery/store-helpers.ts';
import { Refresher } from '../refresher.ts';
import { GLOBAL_PARTITION, type Store, type StoredRecord } from '../store/store.ts';
import { effectiveRoles, roleSchema, type Role } from './roles.ts';
import type { Platform } from './inbound.ts';

export const schoolIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a school id is lowercase letters, digits and hyphens (at most 63)');

export interface School {
  id: string;
  name: string;
  teamsTenants: string[];
  slackTeams: string[];
  timeZone: string;
  createdAt: string;
  /** Emergency contacts shown with the immediate safeguarding steps (out-of-hours DSL, LADO, police, CEOP). */
  contacts?: Record<string, string>;
}

export interface UserRecord {
  id: string;
  platform: Platform;
  name?: string;
  roles: Role[];
  /** Platform conversation reference for proactive messages (a personal chat where possible). */
  reference?: unknown;
  firstSeen: string;
  lastSeen: string;
  /** When a roster said they left (removed from the team, deactivated in Slack): kept for roles and the audit trail, but not messaged. */
  leftAt?: string;
}

interface TenantMapping {
  school: string;
}

const tenantKey = (platform: 'teams' | 'slack', tenantId: string) => ({ kind: 'tenant', school: GLOBAL_PARTITION, id: `${platform}:${tenantId}` });
const schoolKey = (id: string) => ({ kind: 'school', school: GLOBAL_PARTITION, id });
const userKey = (school: string, userId: string) => ({ kind: 'user', school, id: userId });

/** A value read from the store, and when it was read. */
interface Cached<V> {
  value: V;
  readAt: number;
}

/** A bounded map of values read from the store, each with the time it was read. */
class ReadCache<V> {
  readonly #entries = new Map<string, Cached<V>>();
  constructor(private readonly now: () => number, private readonly maxEntries = 10_000) {}
  get(key: string): Cached<V> | undefined {
    return this.#entries.get(key);
  }
  set(key: string, value: V): Cached<V> {
    if (this.#entries.size >= this.maxEntries && !this.#entries.has(key)) this.#entries.clear();
    const entry = { value, readAt: this.now() };
    this.#entries.set(key, entry);
    return entry;
  }
  delete(key: string): void {
    this.#entries.delete(key);
  }
  keys(): string[] {
    return [...this.#entries.keys()];
  }
}

/** A cached user record, with its conversation reference already serialised for the per-turn comparison. */
interface CachedUser {
  record: StoredRecord<UserRecord>;
  referenceJson: string | undefined;
}

const tenantTaken = (platform: 'teams' | 'slack', tenant: string, school: string) =>
  new AppError('conflict', `${platform === 'teams' ? 'Teams tenant' : 'Slack workspace'} ${tenant} already belongs to school ${school}`);

export class Directory {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #schools: ReadCache<School | null>;
  readonly #tenants: ReadCache<string | null>;
  readonly #users: ReadCache<CachedUser>;
  #refresher: Refresher | undefined;
  #onRefreshError: ((error: unknown) => void) | undefined;

  constructor(store: Store, options: { cacheSeconds: number; now?: () => number }) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#ttlMs = options.cacheSeconds * 1000;
    // Registered schools and mappings are few (one per school); users are bounded.
    this.#schools = new ReadCache(this.#now);
    this.#tenants = new ReadCache(this.#now);
    this.#users = new ReadCache(this.#now);
  }

  #fresh(entry: Cached<unknown>): boolean {
    return this.#now() - entry.readAt < this.#ttlMs;
  }

  /** A cached school or mapping may be used without a read: registered ones while the refresher keeps them current, anything else while fresh. */
  #usable(entry: Cached<unknown> | undefined): entry is Cached<unknown> {
    if (!entry) return false;
    if (entry.value !== null && this.#refresher) return true;
    return this.#fresh(entry);
  }

  /**
   * Keeps registered schools and tenant mappings current in the background, so that no turn reads
   * them once they are cached: every `intervalMs` (default ROLE_CACHE_SECONDS, 30 s when that is 0)
   * each cached one is read again. Call `stopRefresh` before closing the store.
   */
  startRefresh(options: { intervalMs?: number; onError?: (error: unknown) => void } = {}): void {
    void this.#refresher?.stop();
    this.#onRefreshError = options.onError;
    this.#refresher = new Refresher(() => this.refresh(), options.intervalMs ?? (this.#ttlMs > 0 ? this.#ttlMs : 30_000));
  }

  async stopRefresh(): Promise<void> {
    const refresher = this.#refresher;
    this.#refresher = undefined;
    await refresher?.stop();
  }

  /** One refresh pass: re-reads every cached registered school and tenant mapping (point reads in `_global`). */
  async refresh(): Promise<void> {
    for (const id of this.#schools.keys()) {
      if (this.#schools.get(id)?.value == null) continue; // unregistered: expires instead
      try {
        const record = await this.#store.get<School>(schoolKey(id));
        this.#schools.set(id, record?.data ?? null);
      } catch (error) {
        this.#onRefreshError?.(error); // the cached school stands until a pass succeeds
      }
    }
    for (const cacheKey of this.#tenants.keys()) {
      if (this.#tenants.get(cacheKey)?.value == null) continue;
      const [platform, ...rest] = cacheKey.split(':');
      try {
        const record = await this.#store.get<TenantMapping>(tenantKey(platform as 'teams' | 'slack', rest.join(':')));
        this.#tenants.set(cacheKey, record?.data.school ?? null);
      } catch (error) {
        this.#onRefreshError?.(error);
      }
    }
  }

  async getSchool(id: string): Promise<School | undefined> {
    const cached = this.#schools.get(id);
    if (this.#usable(cached)) return (cached.value as School | null) ?? undefined;
    const record = await this.#store.get<School>(schoolKey(id));
    this.#remember(this.#schools, id, record?.data ?? null);
    return record?.data;
  }

  /** Caches a school or mapping read; an absent one only when roles are cached at all (it is then remembered for `cacheSeconds`). */
  #remember<V>(cache: ReadCache<V | null>, key: string, value: V | null): void {
    if (value !== null || this.#ttlMs > 0) cache.set(key, value);
    else cache.delete(key);
  }

  async listSchools(): Promise<School[]> {
    return (await this.#store.list<School>('school', GLOBAL_PARTITION)).map((record) => record.data);
  }

  /** The school a Teams tenant or Slack workspace belongs to, if registered. */
  async schoolForTenant(platform: 'teams' | 'slack', tenantId: string): Promise<string | undefined> {
    const cacheKey = `${platform}:${tenantId}`;
    const cached = this.#tenants.get(cacheKey);
    if (this.#usable(cached)) return (cached.value as string | null) ?? undefined;
    const record = await this.#store.get<TenantMapping>(tenantKey(platform, tenantId));
    this.#remember(this.#tenants, cacheKey, record?.data.school ?? null);
    return record?.data.school;
  }

  /** Registers a school, or updates its name and adds mappings when it exists. */
  async upsertSchool(input: { id: string; name: string; teamsTenant?: string; slackTeam?: string; timeZone?: string; contacts?: Record<string, string> }): Promise<School> {
    const validId = schoolIdSchema.safeParse(input.id);
    if (!validId.success) throw new AppError('validation_failed', `"${input.id}" is not a valid school id: ${validId.error.issues[0]!.message}`);
    for (let attempt = 0; ; attempt++) {
      const existing = await this.#store.get<School>(schoolKey(input.id));
      const school: School = existing
        ? { ...existing.data, name: input.name || existing.data.name }
        : { id: input.id, name: input.name, teamsTenants: [], slackTeams: [], timeZone: input.timeZone ?? 'Europe/London', createdAt: new Date().toISOString() };
      if (input.timeZone) school.timeZone = input.timeZone;
      if (input.contacts) school.contacts = { ...school.contacts, ...input.contacts };
      if (input.teamsTenant && !school.teamsTenants.includes(input.teamsTenant)) school.teamsTenants.push(input.teamsTenant);
      if (input.slackTeam && !school.slackTeams.includes(input.slackTeam)) school.slackTeams.push(input.slackTeam);
      // Check every mapping before writing any, so a refused registration leaves nothing behind.
      const claims = ([['teams', input.teamsTenant], ['slack', input.slackTeam]] as const).filter((claim): claim is ['teams' | 'slack', string] => Boolean(claim[1]));
      const missing: Array<['teams' | 'slack', string]> = [];
      for (const [platform, tenant] of claims) {
        const mapping = await this.#store.get<TenantMapping>(tenantKey(platform, tenant));
        if (mapping && mapping.data.school !== input.id) throw tenantTaken(platform, tenant, mapping.data.school);
        if (!mapping) missing.push([platform, tenant]);
      }
      for (const [platform, tenant] of missing) {
        try {
          // create, not upsert: of two registrations racing for one tenant, exactly one wins.
          await this.#store.create<TenantMapping>(tenantKey(platform, tenant), { school: input.id });
        } catch (error) {
          if (!isAppError(error, 'conflict')) throw error;
          const winner = await this.#store.get<TenantMapping>(tenantKey(platform, tenant));
          if (winner && winner.data.school !== input.id) throw tenantTaken(platform, tenant, winner.data.school);
        }
      }
      // Every claimed mapping now names this school (mappings are only ever added, never moved).
      for (const [platform, tenant] of claims) this.#tenants.set(`${platform}:${tenant}`, input.id);
      try {
        if (existing) await this.#store.replace(schoolKey(input.id), school, existing.etag);
        else await this.#store.create(schoolKey(input.id), school);
        this.#schools.set(input.id, school);
        return school;
      } catch (error) {
        if (attempt < 3 && (isAppError(error, 'precondition_failed') || isAppError(error, 'conflict'))) continue;
        throw error;
      }
    }
  }

  /** The user as stored, or undefined when the bot has never met them and no role was granted. */
  async getUser(school: string, userId: string): Promise<StoredRecord<UserRecord> | undefined> {
    return (await this.#user(school, userId))?.record;
  }

  /** The user from the cache while fresh (at most `cacheSeconds` old), otherwise one point read in the school's partition. */
  async #user(school: string, userId: string): Promise<CachedUser | undefined> {
    const cached = this.#users.get(`${school}\u0000${userId}`);
    if (cached && this.#fresh(cached)) return cached.value;
    const record = await this.#store.get<UserRecord>(userKey(school, userId));
    return record ? this.#rememberUser(school, record) : (this.#users.delete(`${school}\u0000${userId}`), undefined);
  }

  #rememberUser(school: string, record: StoredRecord<UserRecord>): CachedUser {
    const user: CachedUser = { record, referenceJson: record.data.reference === undefined ? undefined : JSON.stringify(record.data.reference) };
    if (this.#ttlMs > 0) this.#users.set(`${school}\u0000${record.id}`, user);
    return user;
  }

  /**
   * Records that the user was seen, writing only when something the bot relies on changed (first
   * meeting, a new name, a new conversation reference), so a steady-state turn costs no write.
   */
  async noteUserSeen(school: string, seen: { id: string; platform: Platform; name?: string; reference?: unknown }): Promise<{ user: UserRecord; roles: Role[] }> {
    let cached = await this.#user(school, seen.id);
    const seenReferenceJson = seen.reference === undefined ? undefined : JSON.stringify(seen.reference);
    for (let attempt = 0; ; attempt++) {
      const record = cached?.record;
      const referenceChanged = seenReferenceJson !== undefined && seenReferenceJson !== cached?.referenceJson;
      const nameChanged = seen.name !== undefined && seen.name !== record?.data.name;
      if (record && !referenceChanged && !nameChanged) return { user: record.data, roles: effectiveRoles(record.data.roles) };
      const now = new Date().toISOString();
      const user: UserRecord = {
        // Fields this does not set (a roster's "left" mark) are kept: a roster, not a message, says who left.
        ...record?.data,
        id: seen.id,
        platform: record?.data.platform ?? seen.platform,
        name: seen.name ?? record?.data.name,
        roles: record?.data.roles ?? [],
        reference: seen.reference ?? record?.data.reference,
        firstSeen: record?.data.firstSeen ?? now,
        lastSeen: now,
      };
      try {
        const saved = await this.#saveUser(school, user, record);
        return { user: saved.data, roles: effectiveRoles(saved.data.roles) };
      } catch (error) {
        // The cached record was stale (a role granted or revoked elsewhere, or two first messages at
        // once): read the stored one and try again, rather than failing the user's turn.
        if (attempt >= 3 || !(isAppError(error, 'precondition_failed') || isAppError(error, 'conflict') || isAppError(error, 'not_found'))) throw error;
        this.#users.delete(`${school}\u0000${seen.id}`);
        const stored = await this.#store.get<UserRecord>(userKey(school, seen.id));
        cached = stored && this.#rememberUser(school, stored);
      }
    }
  }

  async grantRole(school: string, userId: string, role: Role): Promise<Role[]> {
    return this.#updateRoles(school, userId, (roles) => (roles.includes(role) ? roles : [...roles, role]));
  }

  async revokeRole(school: string, userId: string, role: Role): Promise<Role[]> {
    return this.#updateRoles(school, userId, (roles) => roles.filter((r) => r !== role));
  }

  async listUsers(school: string): Promise<UserRecord[]> {
    return (await this.listUserRecords(school)).map((record) => record.data);
  }

  /** The school's user records with their etags (one partition query), for a caller that compares and writes few. */
  async listUserRecords(school: string): Promise<StoredRecord<UserRecord>[]> {
    return this.#store.list<UserRecord>('user', school);
  }

  /**
   * Writes `change(current)` to the user's record (current: undefined when the bot has not met them),
   * or nothing when it returns undefined. `known` is the record as already read (from
   * `listUserRecords`; null: known to be absent), which saves the read; after a lost race the record
   * is read again and `change` applied to that.
   */
  async changeUser(school: string, userId: string, change: (current: UserRecord | undefined) => UserRecord | undefined, known?: StoredRecord<UserRecord> | null): Promise<'created' | 'updated' | 'unchanged'> {
    let record = known === undefined ? await this.#store.get<UserRecord>(userKey(school, userId)) : (known ?? undefined);
    for (let attempt = 0; ; attempt++) {
      const next = change(record && structuredClone(record.data));
      if (!next) return 'unchanged';
      try {
        await this.#saveUser(school, { ...next, id: userId }, record);
        return record ? 'updated' : 'created';
      } catch (error) {
        if (attempt >= 3 || !isRace(error)) throw error;
        record = await this.#store.get<UserRecord>(userKey(school, userId));
      }
    }
  }

  /** Users holding any of the roles. A partition query: for notifications, never the question path. */
  async usersWithRole(school: string, roles: readonly Role[]): Promise<UserRecord[]> {
    return (await this.listUsers(school)).filter((user) => user.roles.some((role) => roles.includes(role)));
  }

  async #updateRoles(school: string, userId: string, change: (roles: Role[]) => Role[]): Promise<Role[]> {
    for (let attempt = 0; ; attempt++) {
      const record = await this.#store.get<UserRecord>(userKey(school, userId));
      const now = new Date().toISOString();
      const current = record?.data ?? { id: userId, platform: 'teams' as Platform, roles: [], firstSeen: now, lastSeen: now };
      const roles = change(current.roles.filter((role) => roleSchema.safeParse(role).success && role !== 'staff'));
      try {
        await this.#saveUser(school, { ...current, roles }, record);
        return effectiveRoles(roles);
      } catch (error) {
        if (attempt < 3 && (isAppError(error, 'precondition_failed') || isAppError(error, 'conflict'))) continue;
        throw error;
      }
    }
  }

  async #saveUser(school: string, user: UserRecord, previous: StoredRecord<UserRecord> | undefined): Promise<StoredRecord<UserRecord>> {
    const key = userKey(school, user.id);
    const saved = previous ? await this.#store.replace(key, user, previous.etag) : await this.#store.create(key, user);
    this.#rememberUser(school, saved);
    return saved;
  }
}
