/**
 * Bolt's installation store, kept in our Store: one `slack-installation` record per workspace (or
 * per Enterprise Grid organisation for an org-wide install) in the `_global` partition. Writes use
 * the etag read (create when new), so two instances finishing an install at once never lose one.
 * Records hold the bot token: they are read by Bolt's authorize and the proactive sender only, and
 * never logged.
 */
import type { Installation, InstallationQuery, InstallationStore } from '@slack/bolt';
import { isAppError } from '../../errors.ts';
import { GLOBAL_PARTITION, type RecordKey, type Store } from '../../store/store.ts';

export const INSTALLATION_KIND = 'slack-installation';

type AnyInstallation = Installation<'v1' | 'v2', boolean>;

export const installationKey = (scope: { enterpriseId?: string; teamId?: string; isEnterpriseInstall?: boolean }): RecordKey => {
  if (scope.isEnterpriseInstall && scope.enterpriseId) return { kind: INSTALLATION_KIND, school: GLOBAL_PARTITION, id: `enterprise:${scope.enterpriseId}` };
  if (scope.teamId) return { kind: INSTALLATION_KIND, school: GLOBAL_PARTITION, id: `team:${scope.teamId}` };
  throw new Error('an installation needs a team id, or an enterprise id for an org-wide install');
};

function keyOf(installation: AnyInstallation): RecordKey {
  return installationKey({ enterpriseId: installation.enterprise?.id, teamId: installation.team?.id, isEnterpriseInstall: installation.isEnterpriseInstall });
}

export class StoreInstallationStore implements InstallationStore {
  /**
   * Bolt reads the installation for every request: kept in memory for `cacheSeconds` (0: not kept).
   * An uninstall on another instance is seen within that time (meanwhile Slack refuses the old token).
   */
  readonly #cache = new Map<string, { installation: AnyInstallation; expires: number }>();
  readonly #cacheMs: number;

  constructor(private readonly store: Store, options: { cacheSeconds?: number } = {}) {
    this.#cacheMs = (options.cacheSeconds ?? 0) * 1000;
  }

  async storeInstallation(installation: AnyInstallation): Promise<void> {
    this.#cache.clear();
    const key = keyOf(installation);
    for (let attempt = 0; ; attempt++) {
      const existing = await this.store.get<AnyInstallation>(key);
      try {
        if (existing) await this.store.replace(key, installation, existing.etag);
        else await this.store.create(key, installation);
        return;
      } catch (error) {
        // Another instance wrote it between our read and write (a reinstall, a token refresh): read again.
        if (attempt < 3 && (isAppError(error, 'precondition_failed') || isAppError(error, 'conflict') || isAppError(error, 'not_found'))) continue;
        throw error;
      }
    }
  }

  async fetchInstallation(query: InstallationQuery<boolean>): Promise<AnyInstallation> {
    const keys: RecordKey[] = [];
    if (query.isEnterpriseInstall && query.enterpriseId) keys.push(installationKey({ enterpriseId: query.enterpriseId, isEnterpriseInstall: true }));
    if (query.teamId) keys.push(installationKey({ teamId: query.teamId }));
    // A workspace of an organisation where the app was installed org-wide.
    if (!query.isEnterpriseInstall && query.enterpriseId) keys.push(installationKey({ enterpriseId: query.enterpriseId, isEnterpriseInstall: true }));
    const cacheKey = keys.map((key) => key.id).join('|');
    const cached = this.#cache.get(cacheKey);
    if (cached && cached.expires > Date.now()) return cached.installation;
    for (const key of keys) {
      const record = await this.store.get<AnyInstallation>(key);
      if (record) {
        if (this.#cacheMs > 0) {
          if (this.#cache.size > 10_000) this.#cache.clear();
          this.#cache.set(cacheKey, { installation: record.data, expires: Date.now() + this.#cacheMs });
        }
        return record.data;
      }
    }
    throw new Error('the app is not installed in this workspace');
  }

  async deleteInstallation(query: InstallationQuery<boolean>): Promise<void> {
    this.#cache.clear();
    const key = query.isEnterpriseInstall && query.enterpriseId ? installationKey({ enterpriseId: query.enterpriseId, isEnterpriseInstall: true }) : installationKey({ teamId: query.teamId });
    await this.store.delete(key);
  }
}
