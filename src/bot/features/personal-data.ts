/**
 * Retention of the question log and a member of staff's erasure request (docs/data-protection.md).
 *
 * What erasure must not touch: safeguarding records. A case (and the audit trail of who saw it) is
 * kept as it is, whoever reported it, worked on it or is its subject: a concern about a member of
 * staff must stay attached to them (and keep them from reading it), and the school's duty to keep
 * child-protection records outweighs a request to erase (UK GDPR Art. 17(3)(b) and (e)). Records
 * of the school's own compliance (policy acceptances, critical-alert acknowledgements, publication
 * recipient lists) are kept by platform id; the person's name, roles and how to reach them go with
 * their directory record.
 *
 * Both run from the command line and the nightly job, one school at a time, with partition queries
 * (never on a turn).
 */
import type { Logger } from '../../logger.ts';
import type { Store, StoredRecord } from '../../store/store.ts';
import type { AuditLog } from '../audit.ts';
import type { UserRecord } from '../directory.ts';
import type { DraftRecord } from './incidents/cases.ts';
import type { EscalationRecord, QuestionRecord } from './qa.ts';

/** What replaces an erased person's id where a record of the school is kept. */
export const ERASED = 'erased';

/** Slack forms waiting to be opened by their recipient (src/adapters/slack/forms.ts owns the kind). */
const SLACK_FORM_KIND = 'slack-form';

export interface PersonalDataDeps {
  store: Store;
  audit: AuditLog;
  log: Logger;
}

export interface QuestionRetentionResult {
  /** Ids of the question records deleted (or that would be, on a dry run). */
  questions: string[];
  escalations: string[];
}

export interface ErasureSummary {
  school: string;
  /** Removed. */
  directoryRecord: boolean;
  staffProfile: boolean;
  conversations: number;
  incidentDrafts: number;
  questions: number;
  escalationsDeleted: number;
  slackForms: number;
  policyLinkOpens: number;
  /** Where their progress cards were posted, so they could be updated in place (src/delivery/message-refs.ts). */
  messageRefs: number;
  /** Kept, with the person's id replaced by "erased". */
  escalationsAnonymised: number;
  /** Kept as they are (records of the school), counted so the admin can tell the person. */
  kept: { cases: number; acknowledgements: number; alertAcknowledgements: number };
}

const byIdOf = <T>(records: StoredRecord<T>[], pick: (data: T) => boolean) => records.filter((record) => pick(record.data));

export class PersonalData {
  constructor(private readonly deps: PersonalDataDeps) {}

  /**
   * Deletes questions and coordinator escalations asked more than `days` ago. Saved coordinator
   * answers live in the policy set and are not affected; the questions report then covers `days`.
   */
  async applyQuestionLogRetention(school: string, days: number, now: Date, options: { dryRun?: boolean } = {}): Promise<QuestionRetentionResult> {
    const cutoff = now.getTime() - days * 86_400_000;
    const old = (at: string) => Date.parse(at) < cutoff;
    const { store } = this.deps;
    const questions = byIdOf(await store.list<QuestionRecord>('question', school), (q) => old(q.askedAt));
    const escalations = byIdOf(await store.list<EscalationRecord>('escalation', school), (e) => old(e.askedAt));
    const result = { questions: questions.map((r) => r.id), escalations: escalations.map((r) => r.id) };
    if (options.dryRun) return result;
    for (const record of [...escalations, ...questions]) await store.delete(record);
    if (questions.length + escalations.length > 0) {
      await this.deps.audit.record(school, { actor: 'system', action: 'questions.retention', outcome: 'ok', detail: `${questions.length} question(s) and ${escalations.length} escalation(s) older than ${days} days deleted` });
    }
    this.deps.log.info({ school, questions: questions.length, escalations: escalations.length, days }, 'retention applied to the question log');
    return result;
  }

  /**
   * A member of staff's erasure: removes what is only about them, anonymises what the school keeps
   * working from, leaves safeguarding and compliance records alone, and audits it.
   */
  async forget(school: string, userId: string, options: { actor: string; dryRun?: boolean }): Promise<ErasureSummary> {
    const { store } = this.deps;
    const remove: Array<StoredRecord<unknown>> = [];
    const anonymise: Array<{ record: StoredRecord<EscalationRecord>; data: EscalationRecord }> = [];

    const user = await store.get<UserRecord>({ kind: 'user', school, id: userId });
    if (user) remove.push(user);
    const profile = await store.get({ kind: 'staff-profile', school, id: userId });
    if (profile) remove.push(profile);
    // Conversation state ids end with the user's id (`<platform>:<conversation>:<user>`).
    const conversations = (await store.list('conversation', school)).filter((r) => r.id.endsWith(`:${userId}`));
    // A draft in progress holds an unsent report (theirs to withdraw); a sent one holds only the case reference.
    const drafts = byIdOf(await store.list<DraftRecord>('incident-draft', school), (d) => d.reporter === userId);
    const questions = byIdOf(await store.list<QuestionRecord>('question', school), (q) => q.askedBy === userId);
    const forms = byIdOf(await store.list<{ userId?: string }>(SLACK_FORM_KIND, school), (f) => f.userId === userId);
    const opens = (await store.list('ack-open', school)).filter((r) => r.id.endsWith(`:${userId}`));
    // Message references ids start with the user's id (`<user>:<updateKey>`).
    const messageRefs = await store.list('message-ref', school, { idPrefix: `${userId}:` });
    remove.push(...conversations, ...drafts, ...questions, ...forms, ...opens, ...messageRefs);

    let escalationsDeleted = 0;
    for (const record of await store.list<EscalationRecord>('escalation', school)) {
      const asked = record.data.askedBy === userId;
      const answered = record.data.answeredBy === userId;
      if (!asked && !answered) continue;
      // Their question is theirs, unless its answer was saved for everyone (then it is school policy).
      if (asked && !record.data.saved) {
        remove.push(record);
        escalationsDeleted++;
        continue;
      }
      anonymise.push({ record, data: { ...record.data, ...(asked ? { askedBy: ERASED } : {}), ...(answered ? { answeredBy: ERASED } : {}) } });
    }

    const involved = (c: { reporter?: string; assignee?: string; subjects?: string[]; entries?: Array<{ by: string }>; acknowledgedBy?: { user: string } }) =>
      c.reporter === userId || c.assignee === userId || (c.subjects ?? []).includes(userId) || (c.entries ?? []).some((e) => e.by === userId) || c.acknowledgedBy?.user === userId;
    const kept = {
      cases: (await store.list<Parameters<typeof involved>[0]>('case', school)).filter((r) => involved(r.data)).length,
      acknowledgements: (await store.list('ack', school)).filter((r) => r.id.endsWith(`:${userId}`)).length,
      alertAcknowledgements: (await store.list('alert-read', school)).filter((r) => r.id.endsWith(`:${userId}`)).length,
    };
    const summary: ErasureSummary = {
      school,
      directoryRecord: Boolean(user),
      staffProfile: Boolean(profile),
      conversations: conversations.length,
      incidentDrafts: drafts.length,
      questions: questions.length,
      escalationsDeleted,
      slackForms: forms.length,
      policyLinkOpens: opens.length,
      messageRefs: messageRefs.length,
      escalationsAnonymised: anonymise.length,
      kept,
    };
    if (options.dryRun) return summary;

    // With the etag read above: an escalation answered meanwhile fails here, and a second run completes.
    for (const { record, data } of anonymise) await store.replace(record, data, record.etag);
    for (const record of remove) await store.delete(record);
    await this.deps.audit.record(school, {
      actor: options.actor,
      action: 'people.forget',
      target: userId,
      outcome: 'ok',
      detail: `removed ${remove.length} record(s), anonymised ${anonymise.length}; kept ${kept.cases} case(s), ${kept.acknowledgements} acknowledgement(s), ${kept.alertAcknowledgements} alert acknowledgement(s)`,
    });
    this.deps.log.info({ school, removed: remove.length, anonymised: anonymise.length }, 'personal data erased on request');
    return summary;
  }
}
