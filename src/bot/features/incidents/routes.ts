/**
 * Incident reporting in chat: the guided report (a form card on every surface), exactly-once
 * cases, immediate notification of the right people, and case work for the management team.
 * Nothing from a report is logged: log lines carry the route, the reference and counts only.
 */
import { z } from 'zod';
import { AppError } from '../../../errors.ts';
import type { Logger } from '../../../logger.ts';
import { formCard, validateForm } from '../../../dialogs/form.ts';
import { imageCategories, incidentReportForm } from '../../../dialogs/incident-report.ts';
import type { JobScheduler } from '../../../delivery/types.ts';
import type { AuditLog } from '../../audit.ts';
import type { Directory, UserRecord } from '../../directory.ts';
import type { Notifier } from '../../notifier.ts';
import { card, text, type Block, type Reply } from '../../reply.ts';
import type { Role } from '../../roles.ts';
import type { Route } from '../../router.ts';
import type { Turn } from '../../turn.ts';
import { immediateSteps } from '../immediate-steps.ts';
import { caseCard, caseListCard, governorsReportCard, knownCategoryValues, notificationCard } from './cards.ts';
import { canSeeCase, canWorkOnCase, caseStatuses, rolesForAudience, type CaseBook, type CaseRecord } from './cases.ts';
import { anonymise, countCases, periodFor, retentionDays, type RetentionPolicy } from './reports.ts';

export interface IncidentDeps {
  cases: CaseBook;
  directory: Directory;
  notifier: Notifier;
  audit: AuditLog;
  log: Logger;
  /** Durable timers for escalation when a DSL has not acknowledged; absent until delivery is wired. */
  jobs?: JobScheduler;
  /** Minutes before an unacknowledged child-protection alert goes to the deputies and headteacher. */
  escalateAfterMinutes: number;
}

const startPattern = /^\/?(report|report-incident|report (an?|the) (incident|concern|disclosure)|report incident|log (a|an) (concern|incident)|raise a concern|new report|i want to report something|i need to report something)[.!]?$/i;
const refSchema = z.string().regex(/^INC-\d{4}-\d{4,}$/, 'a case reference looks like INC-2026-0042');

/**
 * Staff who can be named as the subject of a concern. Capped so the form stays within a Teams
 * message; in a larger school the "Staff involved" text field names the person instead.
 */
export const MAX_STAFF_CHOICES = 150;
async function staffChoices(directory: Directory, school: string, exclude: string) {
  const staff = (await directory.listUsers(school)).filter((u) => u.id !== exclude).map((u) => ({ value: u.id, title: u.name ? `${u.name}` : u.id }));
  return staff.length > MAX_STAFF_CHOICES ? [] : staff.sort((a, b) => a.title.localeCompare(b.title));
}

function stepsBlock(turn: Turn): Block[] {
  const contacts = Object.entries(turn.school.contacts ?? {});
  return [
    { type: 'text', style: 'attention', text: 'First, right now:' },
    { type: 'list', ordered: true, items: immediateSteps },
    ...(contacts.length ? [{ type: 'facts' as const, facts: contacts.map(([title, value]) => ({ title, value })) }] : []),
  ];
}

export class IncidentService {
  constructor(private readonly deps: IncidentDeps) {}

  /** Who should hear about a new case: the audience's roles, never its subjects or the reporter. */
  async recipientsFor(school: string, record: CaseRecord, roles: Role[]): Promise<UserRecord[]> {
    const users = await this.deps.directory.usersWithRole(school, roles);
    return users.filter((u) => !record.subjects.includes(u.id) && u.id !== record.reporter);
  }

  /** Notifies the case's audience; child-protection cases go to the DSLs first and urgently. */
  async notify(school: string, record: CaseRecord): Promise<{ delivered: number; attempted: number }> {
    const primary: Role[] = record.audience === 'safeguarding' ? (record.childProtection ? ['dsl'] : ['dsl', 'deputy-dsl', 'management']) : rolesForAudience(record.audience);
    const alsoTold: Role[] = record.audience === 'safeguarding' && record.childProtection ? ['management'] : [];
    const primaryUsers = await this.recipientsFor(school, record, primary);
    const results = await Promise.all(primaryUsers.map((u) => this.deps.notifier.sendToUser(u, [card(notificationCard(record, record.childProtection))])));
    const others = (await this.recipientsFor(school, record, alsoTold)).filter((u) => !primaryUsers.some((p) => p.id === u.id));
    await Promise.all(others.map((u) => this.deps.notifier.sendToUser(u, [card(notificationCard(record, false))])));
    const delivered = results.filter((r) => r.delivered).length;
    this.deps.log.info({ ref: record.ref, attempted: results.length, delivered }, 'case notification sent');
    if (record.audience === 'safeguarding' && record.childProtection) {
      if (delivered === 0) await this.escalate(school, record.ref, 'No designated safeguarding lead could be reached in chat.');
      else if (this.deps.jobs) {
        await this.deps.jobs.schedule({ school, id: `incident-escalation-${record.ref}`, kind: 'incident.escalate', runAt: new Date(Date.now() + this.deps.escalateAfterMinutes * 60_000), payload: { ref: record.ref } });
      }
    }
    return { delivered, attempted: results.length };
  }

  /** Tells the deputies and the headteacher when the DSL alert failed or went unacknowledged. */
  async escalate(school: string, ref: string, reason: string): Promise<void> {
    const found = await this.deps.cases.get(school, ref);
    if (!found || found.data.acknowledgedBy) return;
    const users = await this.recipientsFor(school, found.data, ['deputy-dsl', 'headteacher']);
    await Promise.all(users.map((u) => this.deps.notifier.sendToUser(u, [card(notificationCard(found.data, true, `Escalated to you: ${reason}`))])));
    await this.deps.audit.record(school, { actor: 'system', action: 'incident.escalate', target: ref, outcome: 'ok', detail: `${users.length} told` });
  }

  /**
   * Removes personal details from closed cases older than their category's retention period;
   * open cases are kept whatever their age. Returns the references changed.
   */
  async applyRetention(school: string, policy: RetentionPolicy, now: Date, options: { dryRun?: boolean } = {}): Promise<string[]> {
    const expired = (await this.deps.cases.list(school)).filter(
      (c) => c.status === 'closed' && !c.anonymisedAt && now.getTime() - new Date(c.reportedAt).getTime() > retentionDays(c, policy) * 86_400_000,
    );
    if (options.dryRun) return expired.map((c) => c.ref);
    for (const record of expired) {
      await this.deps.cases.change(school, record.ref, record.rev, (r) => anonymise(r, now));
      await this.deps.audit.record(school, { actor: 'system', action: 'incident.retention', target: record.ref, outcome: 'ok', detail: 'personal details removed' });
    }
    this.deps.log.info({ school, anonymised: expired.length }, 'retention applied to incident records');
    return expired.map((c) => c.ref);
  }

  registerJobs(): void {
    this.deps.jobs?.register<{ ref: string }>('incident.escalate', async (job) => {
      await this.escalate(job.school, job.payload.ref, `not acknowledged within ${this.deps.escalateAfterMinutes} minutes.`);
    });
  }
}

export function incidentRoutes(deps: IncidentDeps, service: IncidentService): Route[] {
  const { cases, directory, audit } = deps;

  const showForm = async (turn: Turn, draftId: string, values: Record<string, unknown> = {}, errors: Record<string, string> = {}): Promise<Reply[]> => {
    const form = incidentReportForm(await staffChoices(directory, turn.school.id, turn.user.id));
    return [
      card(
        formCard(form, {
          values: values as never,
          errors,
          before: Object.keys(errors).length ? [] : stepsBlock(turn),
          submit: { type: 'submit', title: 'Send report', style: 'positive', data: { route: 'incident.submit', draftId } },
          extraActions: [{ type: 'submit', title: 'Cancel report', style: 'destructive', data: { route: 'incident.cancel', draftId } }],
        }),
      ),
    ];
  };

  const start: Route = {
    name: 'incident.start',
    matchText: (input) => startPattern.test(input.trim()),
    handle: async (turn) => {
      const data = z.object({ fresh: z.boolean().optional() }).loose().parse(turn.inbound.submission ?? {});
      const active = turn.state.dialog?.name === 'incident' ? turn.state.dialog.draftId : undefined;
      if (active && !data.fresh) {
        const draft = await cases.getDraft(turn.school.id, active);
        if (draft && !draft.data.caseRef) {
          return [
            card({
              kind: 'incident.resume',
              title: 'You have an unfinished report',
              subtitle: `Started ${draft.data.createdAt.slice(0, 16).replace('T', ' ')}`,
              blocks: [{ type: 'text', text: 'Carry on with it, or cancel it and start again.' }],
              actions: [
                { type: 'submit', title: 'Carry on', style: 'positive', data: { route: 'incident.resume', draftId: active } },
                { type: 'submit', title: 'Cancel it', style: 'destructive', data: { route: 'incident.cancel', draftId: active } },
              ],
            }),
          ];
        }
      }
      const draft = await cases.newDraft(turn.school.id, turn.user.id);
      turn.state.dialog = { name: 'incident', step: 0, values: {}, draftId: draft.id };
      turn.stateChanged = true;
      turn.log.info({ route: 'incident.start' }, 'report started');
      return showForm(turn, draft.id);
    },
  };

  const resume: Route = {
    name: 'incident.resume',
    handle: async (turn) => {
      const { draftId } = z.object({ draftId: z.string().max(100) }).parse(turn.inbound.submission);
      const draft = await cases.getDraft(turn.school.id, draftId);
      if (!draft || draft.data.reporter !== turn.user.id) return [text('That draft has gone. Type "report an incident" to start again.')];
      if (draft.data.caseRef) return [text(`That report was already sent as ${draft.data.caseRef}.`)];
      return showForm(turn, draftId, draft.data.values);
    },
  };

  const cancel: Route = {
    name: 'incident.cancel',
    handle: async (turn) => {
      const { draftId } = z.object({ draftId: z.string().max(100) }).parse(turn.inbound.submission);
      const draft = await cases.getDraft(turn.school.id, draftId);
      if (!draft || draft.data.reporter !== turn.user.id) return [text('There is no draft report of yours to cancel.')];
      if (draft.data.caseRef) return [text(`That report was already sent as ${draft.data.caseRef}; it cannot be cancelled from here. Tell the DSL if something in it is wrong.`)];
      await cases.cancelDraft(turn.school.id, draftId);
      if (turn.state.dialog?.draftId === draftId) {
        delete turn.state.dialog;
        turn.stateChanged = true;
      }
      return [text('Your draft report is cancelled and deleted. If you still have a concern, tell the DSL in person.')];
    },
  };

  const submit: Route = {
    name: 'incident.submit',
    handle: async (turn) => {
      const raw = turn.inbound.submission!;
      const { draftId } = z.object({ draftId: z.string().max(100) }).parse(raw);
      const draft = await cases.getDraft(turn.school.id, draftId);
      if (!draft || draft.data.reporter !== turn.user.id) {
        await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.submit', target: draftId, outcome: 'refused', detail: 'not the reporter or no such draft' });
        return [text('That report form is not yours or has expired. Type "report an incident" to start again.')];
      }
      if (draft.data.caseRef) return [text(`Thank you: this report was already sent. Your reference is ${draft.data.caseRef}.`)];
      const staff = await staffChoices(directory, turn.school.id, turn.user.id);
      const form = incidentReportForm(staff);
      const { values, errors } = validateForm(form, raw);
      if (Object.keys(errors).length) {
        const answers = Object.fromEntries(form.fields.map((f) => [f.id, raw[f.id]]).filter(([, v]) => v !== undefined));
        await cases.saveDraftValues(turn.school.id, draftId, answers);
        turn.log.info({ route: 'incident.submit', fieldErrors: Object.keys(errors).length }, 'report needs corrections');
        return showForm(turn, draftId, answers, errors);
      }
      const subjects = Array.isArray(values.staffSubjects) ? values.staffSubjects.filter((id) => staff.some((s) => s.value === id)) : [];
      const { record, created } = await cases.submit(turn.school.id, draftId, turn.user.id, values, subjects);
      if (turn.state.dialog?.draftId === draftId) {
        delete turn.state.dialog;
        turn.stateChanged = true;
      }
      if (!created) return [text(`Thank you: this report was already sent. Your reference is ${record.ref}.`)];
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.create', target: record.ref, outcome: 'ok' });
      const { delivered } = await service.notify(turn.school.id, record);
      const who = record.audience === 'headteacher' ? 'the headteacher' : record.audience === 'chair-of-governors' ? 'the chair of governors' : record.childProtection ? 'the designated safeguarding lead' : 'the safeguarding team';
      const lines = [`Thank you. Your report is ${record.ref}. ${delivered ? `I have told ${who}.` : `I could not reach ${who} in chat, so it has been escalated; please tell them in person or by phone now.`}`];
      if (record.childProtection && values.dslToldInPerson !== true) lines.push('As this is a child-protection concern, please also tell the DSL in person or by phone now.');
      if (imageCategories.includes(record.category)) lines.push('Remember: do not view, copy or forward any images, and keep the device as it is.');
      lines.push('Only the people who need to know can read the report. You can see your own with "case ' + record.ref + '".');
      return [text(lines.join('\n\n'))];
    },
  };

  const open = async (turn: Turn, ref: string): Promise<Reply[]> => {
    const found = await cases.get(turn.school.id, ref);
    if (!found || !canSeeCase(found.data, { id: turn.user.id, roles: turn.roles })) {
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.open', target: ref, outcome: 'refused' });
      return [text(`There is no case ${ref} that you can see.`)];
    }
    await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.open', target: ref, outcome: 'ok' });
    const canWork = canWorkOnCase(found.data, { id: turn.user.id, roles: turn.roles });
    const team = canWork ? (await directory.usersWithRole(turn.school.id, rolesForAudience(found.data.audience))).filter((u) => !found.data.subjects.includes(u.id)) : [];
    const names = new Map((await directory.listUsers(turn.school.id)).map((u) => [u.id, u.name ?? u.id]));
    return [card(caseCard(found.data, { canWork, team, names }))];
  };

  const openRoute: Route = {
    name: 'incident.open',
    matchText: (input) => /^\/?case\s+INC-\d{4}-\d{4,}$/i.test(input.trim()),
    handle: async (turn) => {
      const ref = turn.inbound.submission ? refSchema.parse(turn.inbound.submission.ref) : refSchema.parse(turn.inbound.text!.trim().split(/\s+/)[1]!.toUpperCase());
      return open(turn, ref);
    },
  };

  const ack: Route = {
    name: 'incident.ack',
    handle: async (turn) => {
      const ref = refSchema.parse(turn.inbound.submission?.ref);
      const found = await cases.get(turn.school.id, ref);
      if (!found || !canWorkOnCase(found.data, { id: turn.user.id, roles: turn.roles })) {
        await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.ack', target: ref, outcome: 'refused' });
        return [text(`There is no case ${ref} that you can acknowledge.`)];
      }
      if (found.data.acknowledgedBy) return [text(`${ref} was already acknowledged at ${found.data.acknowledgedBy.at.slice(0, 16).replace('T', ' ')}.`)];
      await cases.change(turn.school.id, ref, found.data.rev, (r) => ({ ...r, acknowledgedBy: { user: turn.user.id, at: new Date().toISOString() } }));
      await deps.jobs?.cancel(turn.school.id, `incident-escalation-${ref}`);
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.ack', target: ref, outcome: 'ok' });
      return [text(`Acknowledged ${ref}. The alert will not be escalated.`)];
    },
  };

  const update: Route = {
    name: 'incident.update',
    handle: async (turn) => {
      const input = z
        .object({
          ref: refSchema,
          rev: z.coerce.number().int().positive(),
          status: z.enum(caseStatuses).optional(),
          assignee: z.string().max(200).optional(),
          entryKind: z.enum(['note', 'action']).optional(),
          entry: z.string().trim().max(2000).optional(),
        })
        .parse(turn.inbound.submission);
      const found = await cases.get(turn.school.id, input.ref);
      if (!found || !canWorkOnCase(found.data, { id: turn.user.id, roles: turn.roles })) {
        await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.update', target: input.ref, outcome: 'refused' });
        return [text(`There is no case ${input.ref} that you can change.`)];
      }
      if (input.assignee) {
        const team = await directory.usersWithRole(turn.school.id, rolesForAudience(found.data.audience));
        if (!team.some((u) => u.id === input.assignee) || found.data.subjects.includes(input.assignee)) {
          await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.assign', target: input.ref, outcome: 'refused' });
          throw new AppError('validation_failed', 'A case can only be assigned to someone on its confidential team.');
        }
      }
      const at = new Date().toISOString();
      const changes: string[] = [];
      const updated = await cases.change(turn.school.id, input.ref, input.rev, (r) => {
        if (input.status && input.status !== r.status) {
          r.entries.push({ at, by: turn.user.id, kind: 'status', text: `${r.status} → ${input.status}` });
          r.status = input.status;
          changes.push('status');
        }
        if (input.assignee && input.assignee !== r.assignee) {
          r.entries.push({ at, by: turn.user.id, kind: 'assign', text: `assigned to ${input.assignee}` });
          r.assignee = input.assignee;
          changes.push('assignee');
        }
        if (input.entry) {
          r.entries.push({ at, by: turn.user.id, kind: input.entryKind ?? 'note', text: input.entry });
          changes.push(input.entryKind ?? 'note');
        }
        return r;
      });
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.update', target: input.ref, outcome: 'ok', detail: changes.join(', ') || 'no change' });
      return [text(changes.length ? `Saved ${input.ref}: ${changes.join(', ')}.` : 'Nothing to change.'), ...(await open(turn, updated.ref))];
    },
  };

  const list: Route = {
    name: 'incident.list',
    matchText: (input) => /^\/?cases\b/i.test(input.trim()),
    handle: async (turn) => {
      const filter = (turn.inbound.text ?? '').trim().split(/\s+/)[1]?.toLowerCase() ?? 'open';
      const visible = (await cases.list(turn.school.id)).filter((c) => canSeeCase(c, { id: turn.user.id, roles: turn.roles }));
      const matched = visible.filter((c) =>
        filter === 'all' ? true : filter === 'open' ? c.status !== 'closed' : (caseStatuses as readonly string[]).includes(filter) ? c.status === filter : knownCategoryValues.includes(filter) ? c.category === filter : false,
      );
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.list', outcome: 'ok', detail: `${matched.length} shown` });
      if (!visible.length) return [text('There are no cases you can see.')];
      return [card(caseListCard(matched.sort((a, b) => b.reportedAt.localeCompare(a.reportedAt)), filter))];
    },
  };

  const governors: Route = {
    name: 'incident.governors-report',
    matchText: (input) => /^\/?governors'? report\b/i.test(input.trim()),
    handle: async (turn) => {
      const allowed: Role[] = ['governor', 'chair-of-governors', 'headteacher', 'coordinator', 'dsl', 'deputy-dsl', 'management'];
      if (!turn.roles.some((r) => allowed.includes(r))) {
        await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.governors-report', outcome: 'refused' });
        throw new AppError('forbidden', 'Only governors, the headteacher, the coordinator and the safeguarding team can see the governors\' report.');
      }
      const word = (turn.inbound.text ?? '').trim().split(/\s+/).pop()?.toLowerCase();
      const period = periodFor(word === 'month' ? 'month' : word === 'year' ? 'year' : 'term', new Date());
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'incident.governors-report', outcome: 'ok', detail: period.label });
      return [card(governorsReportCard(period, countCases(await cases.list(turn.school.id), period)))];
    },
  };

  return [start, resume, cancel, submit, openRoute, ack, update, list, governors];
}
