/** The cards of the incident feature: notifications carry category and reference, never content. */
import type { Card } from '../../reply.ts';
import type { UserRecord } from '../../directory.ts';
import { categoryTitle, incidentCategories, riskAreas } from '../../../dialogs/incident-report.ts';
import { caseStatuses, type CaseRecord } from './cases.ts';

const yesNo = (value: unknown) => (value === true ? 'Yes' : value === false ? 'No' : 'Not answered');
const listOf = (value: unknown, choices: ReadonlyArray<{ value: string; title: string }>) =>
  (Array.isArray(value) ? value : typeof value === 'string' ? [value] : []).map((v) => choices.find((c) => c.value === v)?.title ?? String(v)).join(', ') || 'Not answered';

export function notificationCard(record: CaseRecord, urgent: boolean, note?: string): Card {
  return {
    kind: 'incident.notification',
    title: urgent ? `Urgent: child-protection concern ${record.ref}` : `New confidential report ${record.ref}`,
    tone: urgent ? 'attention' : 'default',
    blocks: [
      {
        type: 'facts',
        facts: [
          { title: 'Reference', value: record.ref },
          { title: 'Category', value: categoryTitle(record.category) },
          { title: 'Child at risk now', value: yesNo(record.values.childAtRisk) },
          { title: 'Reported', value: record.reportedAt.slice(0, 16).replace('T', ' ') },
        ],
      },
      ...(note ? [{ type: 'text' as const, style: 'attention' as const, text: note }] : []),
      { type: 'text', style: 'muted', text: 'The details are kept inside the bot: open the case to read them.' },
    ],
    actions: [
      { type: 'submit', title: 'Acknowledge', style: 'positive', data: { route: 'incident.ack', ref: record.ref } },
      { type: 'submit', title: 'Open case', data: { route: 'incident.open', ref: record.ref } },
    ],
  };
}

export function caseCard(record: CaseRecord, options: { canWork: boolean; team: UserRecord[]; names: Map<string, string> }): Card {
  const v = record.values;
  const name = (id: string | undefined) => (id ? options.names.get(id) ?? id : 'Nobody yet');
  const text = (value: unknown) => (typeof value === 'string' && value ? value : 'Not given');
  return {
    kind: 'incident.case',
    title: `${record.ref}: ${categoryTitle(record.category)}`,
    subtitle: `Confidential · status ${record.status} · assigned to ${name(record.assignee)}`,
    tone: record.childProtection && record.status !== 'closed' ? 'attention' : 'default',
    blocks: [
      {
        type: 'facts',
        facts: [
          { title: 'Reported', value: `${record.reportedAt.slice(0, 16).replace('T', ' ')} by ${name(record.reporter)}` },
          { title: 'Happened', value: `${text(v.occurredAt)} · ${text(v.place)}` },
          { title: 'Risk area', value: listOf(v.riskAreas, riskAreas) },
          { title: 'Child at risk now', value: yesNo(v.childAtRisk) },
          { title: 'Devices', value: listOf(v.devices, [{ value: 'school', title: 'School-owned' }, { value: 'personal', title: 'Personal' }, { value: 'none', title: 'None or not known' }]) },
          { title: 'DSL told in person', value: v.dslToldInPerson === true ? `Yes, ${text(v.dslToldAt)}` : yesNo(v.dslToldInPerson) },
          ...(record.acknowledgedBy ? [{ title: 'Acknowledged', value: `${name(record.acknowledgedBy.user)}, ${record.acknowledgedBy.at.slice(0, 16).replace('T', ' ')}` }] : []),
        ],
      },
      ...(record.anonymisedAt ? [{ type: 'text' as const, style: 'muted' as const, text: `Personal details removed on ${record.anonymisedAt.slice(0, 10)} under the retention policy.` }] : []),
      { type: 'text', style: 'heading', text: 'What happened' },
      { type: 'quote', text: text(v.details) },
      { type: 'facts', facts: [
        { title: 'Pupils involved', value: text(v.pupils) },
        { title: 'Staff involved', value: text(v.staffInvolved) },
        { title: 'Done so far', value: text(v.actionsTaken) },
        { title: 'Evidence held', value: text(v.evidence) },
      ] },
      ...(record.entries.length
        ? [{ type: 'text' as const, style: 'heading' as const, text: 'Case notes' }, { type: 'list' as const, items: record.entries.slice(-10).map((e) => `${e.at.slice(0, 16).replace('T', ' ')} ${name(e.by)} (${e.kind}): ${e.text.length > 400 ? `${e.text.slice(0, 400)} …` : e.text}`) },
            ...(record.entries.length > 10 ? [{ type: 'text' as const, style: 'muted' as const, text: `Showing the latest 10 of ${record.entries.length} entries; the export has them all.` }] : [])]
        : []),
      ...(options.canWork
        ? [
            { type: 'input' as const, input: { kind: 'choice' as const, id: 'status', label: 'Status', value: record.status, choices: caseStatuses.map((s) => ({ value: s, title: s })) } },
            { type: 'input' as const, input: { kind: 'choice' as const, id: 'assignee', label: 'Assigned to', value: record.assignee, choices: options.team.map((u) => ({ value: u.id, title: u.name ?? u.id })) } },
            { type: 'input' as const, input: { kind: 'choice' as const, id: 'entryKind', label: 'Add a', value: 'note', choices: [{ value: 'note', title: 'Note' }, { value: 'action', title: 'Action taken' }] } },
            { type: 'input' as const, input: { kind: 'text' as const, id: 'entry', label: 'Note or action (facts, and the reason for each decision)', multiline: true, maxLength: 2000 } },
          ]
        : []),
    ],
    actions: options.canWork ? [{ type: 'submit', title: 'Save changes', style: 'positive', data: { route: 'incident.update', ref: record.ref, rev: record.rev } }] : [],
  };
}

export function caseListCard(cases: CaseRecord[], filter: string): Card {
  return {
    kind: 'incident.list',
    title: `Cases (${filter})`,
    subtitle: 'Confidential: only the cases you may see.',
    blocks: cases.length
      ? [
          { type: 'facts', facts: cases.slice(0, 40).map((c) => ({ title: c.ref, value: `${categoryTitle(c.category)} · ${c.status}${c.childProtection ? ' · child protection' : ''}` })) },
          ...(cases.length > 40 ? [{ type: 'text' as const, style: 'muted' as const, text: `${cases.length - 40} more: narrow the list, e.g. "cases new" or "cases nudes".` }] : []),
          { type: 'text', style: 'muted', text: 'Open one with "case INC-YYYY-NNNN".' },
        ]
      : [{ type: 'text', text: 'No cases match.' }],
    actions: cases.slice(0, 5).map((c) => ({ type: 'submit' as const, title: `Open ${c.ref}`, data: { route: 'incident.open', ref: c.ref } })),
  };
}

export function governorsReportCard(period: { label: string }, counts: { total: number; byCategory: Map<string, number>; byRisk: Map<string, number>; byStatus: Map<string, number> }): Card {
  const facts = (map: Map<string, number>, title: (k: string) => string) => [...map.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => ({ title: title(k), value: String(n) }));
  return {
    kind: 'incident.governors-report',
    title: `Online-safety incidents: ${period.label}`,
    subtitle: 'Counts only: no personal details.',
    blocks: [
      { type: 'facts', facts: [{ title: 'Reports', value: String(counts.total) }] },
      { type: 'text', style: 'heading', text: 'By category' },
      counts.byCategory.size ? { type: 'facts', facts: facts(counts.byCategory, categoryTitle) } : { type: 'text', text: 'None.' },
      { type: 'text', style: 'heading', text: 'By online-risk area' },
      counts.byRisk.size ? { type: 'facts', facts: facts(counts.byRisk, (k) => riskAreas.find((r) => r.value === k)?.title ?? k) } : { type: 'text', text: 'None.' },
      { type: 'text', style: 'heading', text: 'By status' },
      counts.byStatus.size ? { type: 'facts', facts: facts(counts.byStatus, (k) => k) } : { type: 'text', text: 'None.' },
    ],
  };
}

export const knownCategoryValues = incidentCategories.map((c) => c.value as string);
