/**
 * The incident report, defined once: its fields, what is required when, and what counts as a
 * child-protection concern. Rendered by every surface through formCard().
 */
import type { FieldChoice, FormDefinition, FormValues } from './form.ts';

export const incidentCategories = [
  { value: 'cyberbullying', title: 'Cyberbullying' },
  { value: 'harmful-content', title: 'Harmful or inappropriate content seen or shared' },
  { value: 'contact-grooming', title: 'Contact or grooming concern' },
  { value: 'nudes', title: 'Sharing nudes or semi-nudes' },
  { value: 'radicalisation', title: 'Radicalisation concern' },
  { value: 'staff-conduct', title: "Concern about a member of staff's conduct" },
  { value: 'school-device-misuse', title: 'Misuse of school devices or accounts' },
  { value: 'personal-device-misuse', title: 'Personal device misuse' },
  { value: 'data-breach', title: 'Data breach or loss' },
  { value: 'account-compromise', title: 'Account compromise' },
  { value: 'filtering-alert', title: 'Filtering or monitoring alert' },
  { value: 'other', title: 'Other' },
] as const satisfies readonly FieldChoice[];

export type IncidentCategory = (typeof incidentCategories)[number]['value'];

export const riskAreas = [
  { value: 'content', title: 'Content (harmful or illegal material)' },
  { value: 'contact', title: 'Contact (grooming, adults posing as children)' },
  { value: 'conduct', title: 'Conduct (bullying, sharing images)' },
  { value: 'commerce', title: 'Commerce (gambling, scams, phishing)' },
] as const satisfies readonly FieldChoice[];

/** Categories that are child-protection concerns: the DSLs are alerted at once. */
export const childProtectionCategories: readonly IncidentCategory[] = ['contact-grooming', 'nudes', 'radicalisation'];

/** Categories where images may be involved: the form and the bot say plainly that none are collected. */
export const imageCategories: readonly IncidentCategory[] = ['nudes', 'contact-grooming', 'harmful-content'];

export const categoryTitle = (value: string): string => incidentCategories.find((c) => c.value === value)?.title ?? value;

const isStaffConcern = (values: FormValues) => values.category === 'staff-conduct';

/** The form; `staff` lists the school's known staff so a subject of a staff concern is identified by id. */
export function incidentReportForm(staff: FieldChoice[]): FormDefinition {
  return {
    id: 'incident',
    title: 'Report an incident or concern',
    intro:
      'Facts only, the same day. Never upload, copy or forward images: describe what you saw instead. Only the people who need to know (the DSLs and the management team, or the headteacher for a concern about staff) can read this.',
    fields: [
      { id: 'category', kind: 'choice', label: 'What kind of concern is it?', required: true, choices: [...incidentCategories] },
      { id: 'aboutHeadteacher', kind: 'yesno', label: 'Is the concern about the headteacher?', when: isStaffConcern, required: true, hint: 'Only for a concern about a member of staff.' },
      ...(staff.length
        ? [{ id: 'staffSubjects', kind: 'choice' as const, label: 'Which member of staff is it about?', choices: staff, multiple: true, when: isStaffConcern, confidential: true, hint: 'Only for a concern about a member of staff. They will never see this report.' }]
        : []),
      { id: 'riskAreas', kind: 'choice', label: 'Online risk area', required: true, multiple: true, choices: [...riskAreas] },
      { id: 'childAtRisk', kind: 'yesno', label: 'Is a child at risk of harm right now?', required: true },
      { id: 'occurredAt', kind: 'datetime', label: 'When did it happen?', required: true },
      { id: 'place', kind: 'text', label: 'Where (place, platform or app)?', required: true, maxLength: 200 },
      { id: 'details', kind: 'text', label: "What happened? Facts, and the child's own words if they told you", multiline: true, required: true, maxLength: 4000, confidential: true },
      { id: 'pupils', kind: 'text', label: 'Pupils involved (names, year groups)', multiline: true, maxLength: 1000, confidential: true },
      { id: 'staffInvolved', kind: 'text', label: 'Staff involved', maxLength: 500, confidential: true, required: false },
      { id: 'devices', kind: 'choice', label: 'Devices involved', multiple: true, choices: [{ value: 'school', title: 'School-owned' }, { value: 'personal', title: 'Personal' }, { value: 'none', title: 'None or not known' }] },
      { id: 'actionsTaken', kind: 'text', label: 'What has been done so far?', multiline: true, required: true, maxLength: 2000 },
      { id: 'evidence', kind: 'text', label: 'Evidence held and where (describe it; never copy images)', multiline: true, maxLength: 1000 },
      { id: 'dslToldInPerson', kind: 'yesno', label: 'Have you told a DSL in person?', required: true },
      { id: 'dslToldAt', kind: 'datetime', label: 'When did you tell them?', when: (v) => v.dslToldInPerson === true, required: true, hint: 'Only if you told a DSL in person.' },
    ],
    rules: (values, now) => {
      const problems: Record<string, string> = {};
      if (values.category === 'staff-conduct' && staff.length && !values.staffSubjects && !values.staffInvolved) {
        problems.staffInvolved = 'Staff involved: say which member of staff the concern is about (or pick them from the list).';
      }
      if (typeof values.occurredAt === 'string' && new Date(values.occurredAt).getTime() > now.getTime() + 60 * 60 * 1000) {
        problems.occurredAt = 'When did it happen?: that time is in the future.';
      }
      return problems;
    },
  };
}
