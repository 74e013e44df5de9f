import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseBook, canSeeCase, type CaseRecord } from '../../src/bot/features/incidents/cases.ts';
import { anonymise, casesToCsv, countCases, csvCell, defaultRetention, periodFor, retentionDays } from '../../src/bot/features/incidents/reports.ts';
import { formCard, validateForm } from '../../src/dialogs/form.ts';
import { incidentReportForm } from '../../src/dialogs/incident-report.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { repoRoot } from '../helpers/app.ts';
import { runCli } from '../helpers/cli.ts';

let dir: string;
const env = () => ({ DATA_DIR: path.join(dir, 'data'), POLICIES_DIR: path.join(repoRoot, 'policies'), LOG_LEVEL: 'warn' });

async function seedCase(overrides: Partial<CaseRecord['values']> = {}, at = new Date()) {
  const store = createSqliteStore({ file: path.join(dir, 'data', 'esafety.sqlite') });
  try {
    const book = new CaseBook(store, () => at);
    const draft = await book.newDraft('default', 'teacher-1');
    const values = { category: 'cyberbullying', riskAreas: ['conduct'], childAtRisk: false, occurredAt: '2026-11-20', place: 'Group chat', details: '=HYPERLINK("x") said "mean" things', actionsTaken: 'Spoke to them', dslToldInPerson: false, ...overrides };
    return (await book.submit('default', draft.id, 'teacher-1', values, [])).record;
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esafety-incidents-'));
  // The first CLI call creates the default school (outside production) and its store file.
  const listed = await runCli(['schools', 'list'], { cwd: dir, env: env() });
  expect(listed.code).toBe(0);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('incident exports and reports from the command line', () => {
  it('exports every case as CSV with formulas neutralised, and audits the export', async () => {
    const record = await seedCase();
    const result = await runCli(['incidents', 'export', '--school', 'default', '--format', 'csv'], { cwd: dir, env: env() });
    expect(result.code).toBe(0);
    const [header, row] = result.stdout.trim().split('\n');
    expect(header).toContain('"reference","category"');
    expect(row).toContain(`"${record.ref}"`);
    expect(row).toContain(`"'=HYPERLINK(""x"") said ""mean"" things"`);
    const store = createSqliteStore({ file: path.join(dir, 'data', 'esafety.sqlite') });
    const audit = (await store.list<any>('audit', 'default')).map((r) => r.data);
    await store.close();
    expect(audit.some((e) => e.action === 'incident.export' && e.actor === 'cli')).toBe(true);
  });

  it('exports JSON that parses, and refuses an unknown format or school clearly', async () => {
    const json = await runCli(['incidents', 'export', '--school', 'default', '--format', 'json'], { cwd: dir, env: env() });
    expect(JSON.parse(json.stdout).length).toBeGreaterThan(0);
    const badFormat = await runCli(['incidents', 'export', '--school', 'default', '--format', 'xml'], { cwd: dir, env: env() });
    expect(badFormat.code).not.toBe(0);
    expect(badFormat.stderr).toMatch(/--format must be csv or json/);
    const badSchool = await runCli(['incidents', 'export', '--school', 'nope', '--format', 'csv'], { cwd: dir, env: env() });
    expect(badSchool.stderr).toMatch(/no school "nope"/);
  });

  it('reports governors counts with no personal details', async () => {
    const result = await runCli(['incidents', 'report', '--school', 'default', '--period', 'year', '--format', 'csv'], { cwd: dir, env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/"category","cyberbullying","\d+"/);
    expect(result.stdout).not.toContain('teacher-1');
    expect(result.stdout).not.toContain('HYPERLINK');
  });

  it('anonymises closed cases past retention, keeps open ones, and says how many', async () => {
    const old = new Date(Date.now() - 4 * 365 * 86_400_000);
    const closedOld = await seedCase({}, old);
    const openOld = await seedCase({}, old);
    const store = createSqliteStore({ file: path.join(dir, 'data', 'esafety.sqlite') });
    await new CaseBook(store).change('default', closedOld.ref, closedOld.rev, (r) => ({ ...r, status: 'closed' }));
    await store.close();
    const dry = await runCli(['incidents', 'retention', '--school', 'default', '--dry-run'], { cwd: dir, env: env() });
    expect(dry.stdout.trim().split('\n')).toEqual([closedOld.ref]);
    const run = await runCli(['incidents', 'retention', '--school', 'default'], { cwd: dir, env: env() });
    expect(run.stderr).toMatch(/anonymised 1 closed case/);
    const after = createSqliteStore({ file: path.join(dir, 'data', 'esafety.sqlite') });
    const closed = (await after.get<CaseRecord>({ kind: 'case', school: 'default', id: closedOld.ref }))!.data;
    const open = (await after.get<CaseRecord>({ kind: 'case', school: 'default', id: openOld.ref }))!.data;
    await after.close();
    expect(closed.values.details).toBeUndefined();
    expect(closed.reporter).toBe('removed');
    expect(closed.category).toBe('cyberbullying');
    expect(open.values.details).toBeDefined();
  });
});

describe('emergency contacts', () => {
  it("keeps the school's emergency contacts for the immediate steps, and refuses a malformed one", async () => {
    const added = await runCli(['schools', 'add', '--id', 'default', '--name', 'Harbour Lane Academy', '--contact', 'Out-of-hours DSL=07700 900123', '--contact', 'LADO=01632 960000'], { cwd: dir, env: env() });
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout).contacts).toEqual({ 'Out-of-hours DSL': '07700 900123', LADO: '01632 960000' });
    const bad = await runCli(['schools', 'add', '--id', 'default', '--name', 'X', '--contact', 'no equals sign'], { cwd: dir, env: env() });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--contact must look like/);
    const badZone = await runCli(['schools', 'add', '--id', 'default', '--name', 'X', '--time-zone', 'Mars/Olympus'], { cwd: dir, env: env() });
    expect(badZone.stderr).toMatch(/is not a time zone/);
  });
});

describe('report rules', () => {
  const form = incidentReportForm([{ value: 'staff-9', title: 'Pat' }]);

  it('asks when the DSL was told only if they were told in person', () => {
    expect(validateForm(form, { dslToldInPerson: 'true' }).errors.dslToldAt).toMatch(/please answer/);
    expect(validateForm(form, { dslToldInPerson: 'false' }).errors.dslToldAt).toBeUndefined();
  });

  it('understands "today 10:30" and never marks a conditional question required on the card', () => {
    // In the afternoon (the form's clock is passed in: run before 10:30, "today 10:30" is still to come).
    const afternoon = new Date(2026, 10, 24, 15, 0);
    const { values, errors } = validateForm(form, { occurredAt: 'today 10:30' }, afternoon);
    expect(errors.occurredAt).toBeUndefined();
    expect(new Date(`${values.occurredAt}Z`).getTime()).toBe(new Date(2026, 10, 24, 10, 30).getTime());
    // Early in the morning the same words are hours ahead: refused as in the future.
    expect(validateForm(form, { occurredAt: 'today 10:30' }, new Date(2026, 10, 24, 7, 0)).errors.occurredAt).toMatch(/in the future/);
    const card = formCard(form, { submit: { type: 'submit', title: 'Send', data: { route: 'incident.submit' } } });
    const required = card.blocks.flatMap((b) => (b.type === 'input' && 'required' in b.input && b.input.required ? [b.input.id] : []));
    expect(required).toContain('category');
    expect(required).not.toContain('dslToldAt');
    expect(required).not.toContain('aboutHeadteacher');
  });

  it('ignores a forged field and refuses a value outside the list', () => {
    const { values, errors } = validateForm(form, { category: 'made-up', isAdmin: 'true' });
    expect(errors.category).toMatch(/choose from the list/);
    expect(values).not.toHaveProperty('isAdmin');
  });

  it('rejects a time in the future and an over-long answer', () => {
    const { errors } = validateForm(form, { occurredAt: '2999-01-01', place: 'x'.repeat(201) });
    expect(errors.occurredAt).toMatch(/future/);
    expect(errors.place).toMatch(/at most 200/);
  });

  it('keeps child-protection records for the long period whatever their category', () => {
    const base = { category: 'other', childProtection: true } as CaseRecord;
    expect(retentionDays(base, defaultRetention)).toBe(defaultRetention.nudes);
    expect(retentionDays({ ...base, childProtection: false }, defaultRetention)).toBe(defaultRetention.other);
  });

  it('never shows a staff concern to its subject, even one holding the headteacher role', () => {
    const record = { reporter: 'r', audience: 'headteacher', subjects: ['head-2'] } as CaseRecord;
    expect(canSeeCase(record, { id: 'head-2', roles: ['staff', 'headteacher'] })).toBe(false);
    expect(canSeeCase(record, { id: 'head-1', roles: ['staff', 'headteacher'] })).toBe(true);
    expect(canSeeCase(record, { id: 'dsl-1', roles: ['staff', 'dsl', 'management'] })).toBe(false);
  });

  it('counts only the chosen period and neutralises spreadsheet formulas', () => {
    const inTerm = { category: 'nudes', status: 'new', reportedAt: '2026-10-01T00:00:00Z', values: { riskAreas: ['conduct'] } } as unknown as CaseRecord;
    const before = { ...inTerm, reportedAt: '2026-06-01T00:00:00Z' } as CaseRecord;
    const counts = countCases([inTerm, before], periodFor('term', new Date('2026-11-24T00:00:00Z')));
    expect(counts.total).toBe(1);
    expect(counts.byRisk.get('conduct')).toBe(1);
    expect(csvCell('+1+1')).toBe(`"'+1+1"`);
    expect(casesToCsv([])).toMatch(/^"reference"/);
    expect(anonymise({ ...inTerm, entries: [], subjects: [], reporter: 'x', values: { details: 'y', category: 'nudes' } } as unknown as CaseRecord, new Date()).values).toEqual({ category: 'nudes' });
  });
});
