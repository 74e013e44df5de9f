/**
 * Confidential case records: numbering, exactly-once creation from a draft, who may see a case,
 * and changes with optimistic concurrency. Every read and change is audited by the caller.
 */
import { randomUUID } from 'node:crypto';
import { AppError, isAppError } from '../../../errors.ts';
import type { Store } from '../../../store/store.ts';
import type { FormValues } from '../../../dialogs/form.ts';
import { childProtectionCategories, type IncidentCategory } from '../../../dialogs/incident-report.ts';
import type { Role } from '../../roles.ts';

export const caseStatuses = ['new', 'triaged', 'action-taken', 'closed'] as const;
export type CaseStatus = (typeof caseStatuses)[number];

/** Who the case belongs to: the safeguarding team, or a narrower audience for concerns about staff. */
export type CaseAudience = 'safeguarding' | 'headteacher' | 'chair-of-governors';

export interface CaseEntry {
  at: string;
  by: string;
  kind: 'note' | 'action' | 'status' | 'assign';
  text: string;
}

export interface CaseRecord {
  ref: string;
  draftId: string;
  category: IncidentCategory;
  audience: CaseAudience;
  childProtection: boolean;
  values: FormValues;
  reporter: string;
  reportedAt: string;
  status: CaseStatus;
  assignee?: string;
  /** Staff the concern is about: never shown the case, whatever their roles. */
  subjects: string[];
  entries: CaseEntry[];
  /** Increases on every change; a card carries it so a stale submission is refused. */
  rev: number;
  acknowledgedBy?: { user: string; at: string };
  /** Set by the retention job when personal details were removed. */
  anonymisedAt?: string;
}

export interface DraftRecord {
  id: string;
  reporter: string;
  values: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  /** Set once the report became a case: a second submit returns this reference. */
  caseRef?: string;
  cancelled?: boolean;
}

export const caseKey = (school: string, ref: string) => ({ kind: 'case', school, id: ref });
export const draftKey = (school: string, id: string) => ({ kind: 'incident-draft', school, id });
const counterKey = (school: string, year: number) => ({ kind: 'incident-counter', school, id: String(year) });

export function audienceFor(values: FormValues): CaseAudience {
  if (values.category !== 'staff-conduct') return 'safeguarding';
  return values.aboutHeadteacher === true ? 'chair-of-governors' : 'headteacher';
}

const audienceRoles: Record<CaseAudience, Role[]> = {
  safeguarding: ['dsl', 'deputy-dsl', 'management'],
  headteacher: ['headteacher'],
  'chair-of-governors': ['chair-of-governors'],
};

/** The roles that read a case of this audience (and are notified about it). */
export const rolesForAudience = (audience: CaseAudience): Role[] => audienceRoles[audience];

/** The one place case visibility is decided. */
export function canSeeCase(record: CaseRecord, user: { id: string; roles: readonly Role[] }): boolean {
  if (record.subjects.includes(user.id)) return false;
  if (record.reporter === user.id) return true;
  return user.roles.some((role) => audienceRoles[record.audience].includes(role));
}

/** Only the case's audience works on it; a reporter may read their own but not change it. */
export function canWorkOnCase(record: CaseRecord, user: { id: string; roles: readonly Role[] }): boolean {
  if (record.subjects.includes(user.id)) return false;
  return user.roles.some((role) => audienceRoles[record.audience].includes(role));
}

export const isChildProtection = (values: FormValues): boolean =>
  values.childAtRisk === true || childProtectionCategories.includes(values.category as IncidentCategory);

export class CaseBook {
  constructor(private readonly store: Store, private readonly now: () => Date = () => new Date()) {}

  async newDraft(school: string, reporter: string): Promise<DraftRecord> {
    const at = this.now().toISOString();
    const draft: DraftRecord = { id: `draft-${randomUUID()}`, reporter, values: {}, createdAt: at, updatedAt: at };
    await this.store.create(draftKey(school, draft.id), draft);
    return draft;
  }

  async getDraft(school: string, id: string) {
    return this.store.get<DraftRecord>(draftKey(school, id));
  }

  /** Keeps the answers typed so far (also the invalid ones), so nothing is lost on an error. */
  async saveDraftValues(school: string, id: string, values: Record<string, unknown>): Promise<void> {
    const record = await this.getDraft(school, id);
    if (!record || record.data.caseRef || record.data.cancelled) return;
    try {
      await this.store.replace(draftKey(school, id), { ...record.data, values, updatedAt: this.now().toISOString() }, record.etag);
    } catch (error) {
      if (!isAppError(error, 'precondition_failed')) throw error;
    }
  }

  async cancelDraft(school: string, id: string): Promise<boolean> {
    const record = await this.getDraft(school, id);
    if (!record || record.data.caseRef) return false;
    await this.store.delete(draftKey(school, id));
    return true;
  }

  /** Next INC-YYYY-NNNN for the school, from a counter record updated with its etag. */
  async #nextRef(school: string): Promise<string> {
    const year = this.now().getUTCFullYear();
    for (let attempt = 0; attempt < 20; attempt++) {
      const counter = await this.store.get<{ last: number }>(counterKey(school, year));
      const next = (counter?.data.last ?? 0) + 1;
      try {
        if (counter) await this.store.replace(counterKey(school, year), { last: next }, counter.etag);
        else await this.store.create(counterKey(school, year), { last: next });
        return `INC-${year}-${String(next).padStart(4, '0')}`;
      } catch (error) {
        if (!isAppError(error, 'precondition_failed') && !isAppError(error, 'conflict')) throw error;
      }
    }
    throw new AppError('conflict', 'Could not number the report; please submit again.');
  }

  /**
   * Turns a draft into a case exactly once. A double-clicked or retried submit gets the first
   * submit's reference back; a crash between the two writes is completed by the retry.
   */
  async submit(school: string, draftId: string, reporter: string, values: FormValues, subjects: string[]): Promise<{ record: CaseRecord; created: boolean }> {
    const draft = await this.getDraft(school, draftId);
    if (!draft || draft.data.reporter !== reporter) throw new AppError('not_found', 'That report form has expired or is not yours. Type "report an incident" to start again.');
    let ref = draft.data.caseRef;
    if (!ref) {
      ref = await this.#nextRef(school);
      try {
        // The case holds the answers from now on; the draft keeps only the reference (no second copy to retain).
        await this.store.replace(draftKey(school, draftId), { ...draft.data, values: {}, caseRef: ref, updatedAt: this.now().toISOString() }, draft.etag);
      } catch (error) {
        if (!isAppError(error, 'precondition_failed')) throw error;
        // Another submit of the same draft won the race: use its reference.
        const winner = await this.getDraft(school, draftId);
        if (!winner?.data.caseRef) throw new AppError('conflict', 'The report changed while saving; please submit again.');
        ref = winner.data.caseRef;
      }
    }
    const existing = await this.store.get<CaseRecord>(caseKey(school, ref));
    if (existing) return { record: existing.data, created: false };
    const record: CaseRecord = {
      ref,
      draftId,
      category: values.category as IncidentCategory,
      audience: audienceFor(values),
      childProtection: isChildProtection(values),
      values,
      reporter,
      reportedAt: this.now().toISOString(),
      status: 'new',
      subjects,
      entries: [],
      rev: 1,
    };
    try {
      await this.store.create(caseKey(school, ref), record);
      return { record, created: true };
    } catch (error) {
      if (!isAppError(error, 'conflict')) throw error;
      const winner = await this.store.get<CaseRecord>(caseKey(school, ref));
      return { record: winner!.data, created: false };
    }
  }

  async get(school: string, ref: string) {
    return this.store.get<CaseRecord>(caseKey(school, ref));
  }

  async list(school: string): Promise<CaseRecord[]> {
    return (await this.store.list<CaseRecord>('case', school)).map((r) => r.data);
  }

  /**
   * Applies a change if the case is still at `rev`; a stale card gets AppError('precondition_failed')
   * and nothing is overwritten.
   */
  async change(school: string, ref: string, rev: number, apply: (record: CaseRecord) => CaseRecord): Promise<CaseRecord> {
    const current = await this.get(school, ref);
    if (!current) throw new AppError('not_found', `No case ${ref}.`);
    if (current.data.rev !== rev) {
      throw new AppError('precondition_failed', `Case ${ref} has changed since that card was sent (it is now ${current.data.status}). Open it again to see the latest.`);
    }
    const next = { ...apply(structuredClone(current.data)), rev: current.data.rev + 1 };
    try {
      await this.store.replace(caseKey(school, ref), next, current.etag);
      return next;
    } catch (error) {
      if (isAppError(error, 'precondition_failed')) throw new AppError('precondition_failed', `Case ${ref} was changed by someone else a moment ago. Open it again to see the latest.`);
      throw error;
    }
  }
}
