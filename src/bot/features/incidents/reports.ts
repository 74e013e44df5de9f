/**
 * What leaves the case book: the governors' counts (no personal details), the full export for the
 * school's safeguarding record system, and the retention sweep.
 */
import type { IncidentCategory } from '../../../dialogs/incident-report.ts';
import type { CaseRecord } from './cases.ts';

export interface Period {
  label: string;
  from: Date;
  to: Date;
}

/** English school terms, approximately: autumn Sep-Dec, spring Jan-Mar, summer Apr-Aug. */
export function periodFor(kind: 'month' | 'term' | 'year', now: Date): Period {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  if (kind === 'month') {
    const from = new Date(Date.UTC(y, m, 1));
    return { label: from.toLocaleString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }), from, to: new Date(Date.UTC(y, m + 1, 1)) };
  }
  if (kind === 'year') {
    const start = m >= 8 ? y : y - 1;
    return { label: `school year ${start}-${String(start + 1).slice(2)}`, from: new Date(Date.UTC(start, 8, 1)), to: new Date(Date.UTC(start + 1, 8, 1)) };
  }
  if (m >= 8) return { label: `autumn term ${y}`, from: new Date(Date.UTC(y, 8, 1)), to: new Date(Date.UTC(y + 1, 0, 1)) };
  if (m <= 2) return { label: `spring term ${y}`, from: new Date(Date.UTC(y, 0, 1)), to: new Date(Date.UTC(y, 3, 1)) };
  return { label: `summer term ${y}`, from: new Date(Date.UTC(y, 3, 1)), to: new Date(Date.UTC(y, 8, 1)) };
}

export function countCases(cases: CaseRecord[], period: Period) {
  const inPeriod = cases.filter((c) => {
    const at = new Date(c.reportedAt).getTime();
    return at >= period.from.getTime() && at < period.to.getTime();
  });
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const byCategory = new Map<string, number>();
  const byRisk = new Map<string, number>();
  const byStatus = new Map<string, number>();
  for (const c of inPeriod) {
    bump(byCategory, c.category);
    bump(byStatus, c.status);
    const risks = Array.isArray(c.values.riskAreas) ? c.values.riskAreas : [];
    for (const risk of risks) bump(byRisk, String(risk));
  }
  return { total: inPeriod.length, byCategory, byRisk, byStatus };
}

/** CSV cell: quoted, quotes doubled, and a leading formula character neutralised for spreadsheets. */
export function csvCell(value: unknown): string {
  let text = value === undefined || value === null ? '' : Array.isArray(value) ? value.join('; ') : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

export function governorsReportCsv(period: Period, counts: ReturnType<typeof countCases>): string {
  const rows = [['period', 'dimension', 'value', 'count'].map(csvCell).join(',')];
  rows.push([period.label, 'total', '', counts.total].map(csvCell).join(','));
  for (const [dimension, map] of [['category', counts.byCategory], ['risk area', counts.byRisk], ['status', counts.byStatus]] as const) {
    for (const [key, n] of map) rows.push([period.label, dimension, key, n].map(csvCell).join(','));
  }
  return rows.join('\n') + '\n';
}

const exportColumns: Array<[string, (c: CaseRecord) => unknown]> = [
  ['reference', (c) => c.ref],
  ['category', (c) => c.category],
  ['child_protection', (c) => c.childProtection],
  ['status', (c) => c.status],
  ['reported_at', (c) => c.reportedAt],
  ['reporter', (c) => c.reporter],
  ['assignee', (c) => c.assignee],
  ['occurred_at', (c) => c.values.occurredAt],
  ['place', (c) => c.values.place],
  ['risk_areas', (c) => c.values.riskAreas],
  ['child_at_risk', (c) => c.values.childAtRisk],
  ['details', (c) => c.values.details],
  ['pupils', (c) => c.values.pupils],
  ['staff_involved', (c) => c.values.staffInvolved],
  ['devices', (c) => c.values.devices],
  ['actions_taken', (c) => c.values.actionsTaken],
  ['evidence', (c) => c.values.evidence],
  ['dsl_told_in_person', (c) => c.values.dslToldInPerson],
  ['dsl_told_at', (c) => c.values.dslToldAt],
  ['notes', (c) => c.entries.map((e) => `${e.at} ${e.by} ${e.kind}: ${e.text}`)],
  ['anonymised_at', (c) => c.anonymisedAt],
];

export function casesToCsv(cases: CaseRecord[]): string {
  return [exportColumns.map(([name]) => csvCell(name)).join(','), ...cases.map((c) => exportColumns.map(([, get]) => csvCell(get(c))).join(','))].join('\n') + '\n';
}

/** Days each category's records are kept before personal details are removed. */
export type RetentionPolicy = Record<IncidentCategory | 'default', number>;

export const defaultRetention: RetentionPolicy = {
  // Child-protection records: kept for decades (commonly the child's date of birth + 25 years).
  'contact-grooming': 25 * 365,
  nudes: 25 * 365,
  radicalisation: 25 * 365,
  'staff-conduct': 10 * 365,
  cyberbullying: 3 * 365,
  'harmful-content': 3 * 365,
  'school-device-misuse': 2 * 365,
  'personal-device-misuse': 2 * 365,
  'data-breach': 3 * 365,
  'account-compromise': 2 * 365,
  'filtering-alert': 365,
  other: 2 * 365,
  default: 2 * 365,
};

export function retentionDays(record: CaseRecord, policy: RetentionPolicy): number {
  // A case that was a child-protection concern keeps the child-protection period whatever its category.
  const base = policy[record.category] ?? policy.default;
  return record.childProtection ? Math.max(base, policy.nudes) : base;
}

/** The record with personal details removed; category, dates, risk areas and status stay for statistics. */
export function anonymise(record: CaseRecord, at: Date): CaseRecord {
  const keep = ['category', 'riskAreas', 'childAtRisk', 'devices', 'occurredAt'];
  return {
    ...record,
    values: Object.fromEntries(Object.entries(record.values).filter(([k]) => keep.includes(k))),
    reporter: 'removed',
    assignee: undefined,
    subjects: [],
    entries: [],
    acknowledgedBy: undefined,
    anonymisedAt: at.toISOString(),
  };
}
