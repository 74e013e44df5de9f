/**
 * The audit trail: who did what, when, to which record, kept in the store (not only in logs).
 * Entries are append-only records in the school's partition.
 */
import { randomUUID } from 'node:crypto';
import type { Store } from '../store/store.ts';

export interface AuditEntry {
  at: string;
  actor: string;
  action: string;
  /** What it was done to: a case reference, a policy id, a user id. */
  target?: string;
  outcome: 'ok' | 'refused';
  detail?: string;
}

export class AuditLog {
  constructor(private readonly store: Store, private readonly now: () => Date = () => new Date()) {}

  async record(school: string, entry: Omit<AuditEntry, 'at'>): Promise<void> {
    const at = this.now().toISOString();
    await this.store.create({ kind: 'audit', school, id: `${at}-${randomUUID().slice(0, 8)}` }, { at, ...entry });
  }

  async list(school: string, limit = 500): Promise<AuditEntry[]> {
    return (await this.store.list<AuditEntry>('audit', school, { limit })).map((record) => record.data);
  }
}
