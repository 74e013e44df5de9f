/**
 * Schools, their platform mappings, and the people the bot has met (roles and the conversation
 * reference needed to message them later). Reads on the turn path are point reads, cached for at
 * most `roleCacheSeconds` so a revoked role stops working on every instance within a minute.
 */
import { z } from 'zod';
import { AppError, isAppError } from '../errors.ts';
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
}

interface TenantMapping {
  school: string;
}

const tenantKey = (platform: 'teams' | 'slack', tenantId: string) => ({ kind: 'tenant', school: GLOBAL_PARTITION, id: `${platform}:${tenantId}` });
const schoolKey = (id: string) => ({ kind: 'school', school: GLOBAL_PARTITION, id });
const userKey = (school: string, userId: string) => ({ kind: 'user', school, id: userId });

class TtlCache<V> {
  #entries = new Map<string, { value: V; expires: number }>();
  constructor(private readonly ttlMs: number, private readonly now: () => number) {}
  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    if (this.#entries.size > 10_000) this.#entries.clear();
    this.#entries.set(key, { value, expires: this.now() + this.ttlMs });
  }
  delete(key: string): void {
    this.#entries.delete(key);
  }
}

const tenantTaken = (platform: 'teams' | 'slack', tenant: string, school: string) =>
  new AppError('conflict', `${platform === 'teams' ? 'Teams tenant' : 'Slack workspace'} ${tenant} already belongs to school ${school}`);

export class Directory {
  readonly #store: Store;
  readonly #schools: TtlCache<School | null>;
  readonly #tenants: TtlCache<string | null>;
  readonly #users: TtlCache<StoredRecord<UserRecord>>;

  constructor(store: Store, options: { cacheSeconds: number; now?: () => number }) {
    this.#store = store;
    const now = options.now ?? Date.now;
    const ttl = options.cacheSeconds * 1000;
    this.#schools = new TtlCache(ttl, now);
    this.#tenants = new TtlCache(ttl, now);
    this.#users = new TtlCache(ttl, now);
  }

  async getSchool(id: string): Promise<School | undefined> {
    const cached = this.#schools.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.#store.get<School>(schoolKey(id));
    this.#schools.set(id, record?.data ?? null);
    return record?.data;
  }

  async listSchools(): Promise<School[]> {
    return (await this.#store.list<School>('school', GLOBAL_PARTITION)).map((record) => record.data);
  }

  /** The school a Teams tenant or Slack workspace belongs to, if registered. */
  async schoolForTenant(platform: 'teams' | 'slack', tenantId: string): Promise<string | undefined> {
    const cacheKey = `${platform}:${tenantId}`;
    const cached = this.#tenants.get(cacheKey);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.#store.get<TenantMapping>(tenantKey(platform, tenantId));
    this.#tenants.set(cacheKey, record?.data.school ?? null);
    return record?.data.school;
  }

  /** Registers a school, or updates its name and adds mappings when it exists. */
  async upsertSchool(input: { id: string; name: string; teamsTenant?: string; slackTeam?: string; timeZone?: string }): Promise<School> {
    const validId = schoolIdSchema.safeParse(input.id);
    if (!validId.success) throw new AppError('validation_failed', `"${input.id}" is not a valid school id: ${validId.error.issues[0]!.message}`);
    for (let attempt = 0; ; attempt++) {
      const existing = await this.#store.get<School>(schoolKey(input.id));
      const school: School = existing
        ? { ...existing.data, name: input.name || existing.data.name }
        : { id: input.id, name: input.name, teamsTenants: [], slackTeams: [], timeZone: input.timeZone ?? 'Europe/London', createdAt: new Date().toISOString() };
      if (input.timeZone) school.timeZone = input.timeZone;
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
        this.#tenants.delete(`${platform}:${tenant}`);
      }
      try {
        if (existing) await this.#store.replace(schoolKey(input.id), school, existing.etag);
        else await this.#store.create(schoolKey(input.id), school);
        this.#schools.delete(input.id);
        return school;
      } catch (error) {
        if (attempt < 3 && (isAppError(error, 'precondition_failed') || isAppError(error, 'conflict'))) continue;
        throw error;
      }
    }
  }

  /** The user as stored, or undefined when the bot has never met them and no role was granted. */
  async getUser(school: string, userId: string): Promise<StoredRecord<UserRecord> | undefined> {
    const cacheKey = `${school}\u0000${userId}`;
    const cached = this.#users.get(cacheKey);
    if (cached) return cached;
    const record = await this.#store.get<UserRecord>(userKey(school, userId));
    if (record) this.#users.set(cacheKey, record);
    return record;
  }

  /**
   * Records that the user was seen, writing only when something the bot relies on changed (first
   * meeting, a new name, a new conversation reference), so a steady-state turn costs no write.
   */
  async noteUserSeen(school: string, seen: { id: string; platform: Platform; name?: string; reference?: unknown }): Promise<{ user: UserRecord; roles: Role[] }> {
    let record = await this.getUser(school, seen.id);
    for (let attempt = 0; ; attempt++) {
      const referenceChanged = seen.reference !== undefined && JSON.stringify(seen.reference) !== JSON.stringify(record?.data.reference);
      const nameChanged = seen.name !== undefined && seen.name !== record?.data.name;
      if (record && !referenceChanged && !nameChanged) return { user: record.data, roles: effectiveRoles(record.data.roles) };
      const now = new Date().toISOString();
      const user: UserRecord = {
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
        record = await this.#store.get<UserRecord>(userKey(school, seen.id));
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
    return (await this.#store.list<UserRecord>('user', school)).map((record) => record.data);
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
    this.#users.set(`${school}\u0000${user.id}`, saved);
    return saved;
  }
}
