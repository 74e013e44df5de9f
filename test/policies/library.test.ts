import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { answerCard } from '../../src/bot/features/qa.ts';
import { decideAnswer } from '../../src/policies/answer.ts';
import { PolicyLibrary, SAVED_ANSWER_DOC } from '../../src/policies/library.ts';
import { parsePolicy, type PolicyDocument } from '../../src/policies/markdown.ts';
import { countOperations, type CountingStore } from '../../src/store/counting-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';

const devicesV1 = `---
owner: headteacher
version: 2026.1
---
# Mobile Phones and Personal Devices Policy

This policy covers phones and smart watches on site.

## Pupils' phones during lessons

Pupils' phones are switched off and kept in bags during lessons. A phone seen in a lesson is confiscated until the end of the day.

## Staff phones

Staff keep personal phones out of sight when pupils are present.
`;
const devicesV2 = devicesV1.replace('version: 2026.1', 'version: 2026.2').replace('confiscated until the end of the day', 'handed to the school office and collected by a parent at 4pm');

const passwords = `# Data Protection and Password Policy

## Passwords

Staff passwords are at least twelve characters long; a passphrase of three random words is recommended. Never share a password with a colleague.
`;

const gardening = `# Allotment Club Rules

## Watering rota

Members water the tomato beds in turn, following the rota pinned in the greenhouse.
`;

const doc = (file: string, raw: string): PolicyDocument => parsePolicy(file, raw);

let dir: string;
let counting: CountingStore;
let store: Store;
let library: PolicyLibrary;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esafety-library-'));
  counting = countOperations(createSqliteStore({ file: path.join(dir, 'store.sqlite') }));
  store = counting.store;
  library = new PolicyLibrary(store);
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const versionCount = async (school: string) => (await store.list('policy-version', school)).length;

describe('importing policies', () => {
  it('stores a version of each new document and lists it with its history', async () => {
    const report = await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV1), doc('data-protection.md', passwords)], 'coord-1');
    expect(report).toEqual({ added: ['mobile-and-personal-devices', 'data-protection'], updated: [], unchanged: [] });
    expect(await versionCount('harbour')).toBe(2);

    const list = await library.list('harbour');
    expect(list.map((entry) => entry.title)).toEqual(['Data Protection and Password Policy', 'Mobile Phones and Personal Devices Policy']);
    const devices = list.find((entry) => entry.docId === 'mobile-and-personal-devices')!;
    expect(devices).toMatchObject({ version: '2026.1', meta: { owner: 'headteacher' } });
    expect(devices.history).toHaveLength(1);

    const version = await library.getVersion('harbour', 'mobile-and-personal-devices');
    expect(version).toMatchObject({ docId: 'mobile-and-personal-devices', version: '2026.1', importedBy: 'coord-1', source: devicesV1 });
    expect(version!.sections.map((s) => s.id)).toContain('mobile-and-personal-devices#pupils-phones-during-lessons');
    expect(await library.hasPolicies('harbour')).toBe(true);
    expect(await library.hasPolicies('elsewhere')).toBe(false);
  });

  it('leaves everything alone when the same files are imported again, writing nothing', async () => {
    const files = () => [doc('mobile-and-personal-devices.md', devicesV1), doc('data-protection.md', passwords)];
    await library.import('harbour', files(), 'coord-1');
    const before = await store.get({ kind: 'policy-set', school: 'harbour', id: 'current' });
    counting.reset();

    const report = await library.import('harbour', files(), 'coord-2');

    expect(report).toEqual({ added: [], updated: [], unchanged: ['mobile-and-personal-devices', 'data-protection'] });
    expect(counting.counts().writes).toBe(0);
    const after = await store.get({ kind: 'policy-set', school: 'harbour', id: 'current' });
    expect(after!.etag).toBe(before!.etag);
    expect(await versionCount('harbour')).toBe(2);
    expect((await library.getVersion('harbour', 'mobile-and-personal-devices'))!.importedBy).toBe('coord-1');
  });

  it('treats a file re-saved with CRLF line endings as unchanged', async () => {
    await library.import('harbour', [doc('data-protection.md', passwords)], 'coord-1');
    const report = await library.import('harbour', [doc('data-protection.md', passwords.replace(/\n/g, '\r\n'))], 'coord-1');
    expect(report.unchanged).toEqual(['data-protection']);
  });

  it('updates only the changed document, and the older version stays readable by its hash', async () => {
    const old = doc('mobile-and-personal-devices.md', devicesV1);
    await library.import('harbour', [old, doc('data-protection.md', passwords)], 'coord-1');

    const changed = doc('mobile-and-personal-devices.md', devicesV2);
    const report = await library.import('harbour', [changed, doc('data-protection.md', passwords)], 'coord-1');

    expect(report).toEqual({ added: [], updated: ['mobile-and-personal-devices'], unchanged: ['data-protection'] });
    expect(await versionCount('harbour')).toBe(3);
    const current = await library.getVersion('harbour', 'mobile-and-personal-devices');
    expect(current).toMatchObject({ version: '2026.2', hash: changed.hash });
    const previous = await library.getVersion('harbour', 'mobile-and-personal-devices', old.hash);
    expect(previous).toMatchObject({ version: '2026.1', hash: old.hash });
    expect(previous!.source).toContain('confiscated until the end of the day');
    const entry = (await library.list('harbour')).find((e) => e.docId === 'mobile-and-personal-devices')!;
    expect(entry.history.map((h) => h.version)).toEqual(['2026.1', '2026.2']);
  });

  it('goes back to an earlier text without losing the history in between', async () => {
    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV1)], 'coord-1');
    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV2)], 'coord-1');
    const report = await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV1)], 'coord-1');
    expect(report.updated).toEqual(['mobile-and-personal-devices']);
    expect((await library.getVersion('harbour', 'mobile-and-personal-devices'))!.version).toBe('2026.1');
    expect((await library.list('harbour'))[0]!.history.map((h) => h.version)).toEqual(['2026.1', '2026.2', '2026.1']);
    expect(await versionCount('harbour')).toBe(2);
  });

  it('answers an unknown document or hash with undefined, not an error', async () => {
    await library.import('harbour', [doc('data-protection.md', passwords)], 'coord-1');
    expect(await library.getVersion('harbour', 'no-such-doc')).toBeUndefined();
    expect(await library.getVersion('harbour', 'data-protection', '0'.repeat(64))).toBeUndefined();
  });
});

describe('the search index follows the imported text', () => {
  const question = 'what happens if a pupils phone is seen in a lesson';

  it('answers from the new text right after an import', async () => {
    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV1), doc('data-protection.md', passwords)], 'coord-1');
    const before = (await library.index('harbour')).search(question)!;
    expect(before.section.id).toBe('mobile-and-personal-devices#pupils-phones-during-lessons');
    expect(before.section.text).toContain('confiscated until the end of the day');
    expect(before.section.version).toBe('2026.1');

    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV2)], 'coord-1');
    const after = (await library.index('harbour')).search(question)!;
    expect(after.section.text).toContain('collected by a parent at 4pm');
    expect(after.section.version).toBe('2026.2');
  });

  it('reuses the built index on a steady-state question: no store read until the recheck interval', async () => {
    let now = 1_000_000;
    const reader = new PolicyLibrary(store, { recheckMs: 30_000, now: () => now });
    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV1)], 'coord-1');
    const first = await reader.index('harbour');
    counting.reset();
    expect(await reader.index('harbour')).toBe(first);
    expect(counting.counts().total).toBe(0);

    // Another instance imports a change: this one sees it once the recheck interval has passed.
    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV2)], 'coord-1');
    expect((await reader.index('harbour')).search(question)!.section.version).toBe('2026.1');
    now += 30_001;
    expect((await reader.index('harbour')).search(question)!.section.version).toBe('2026.2');
  });

  it('keeps the same index when the recheck finds nothing changed', async () => {
    let now = 0;
    const reader = new PolicyLibrary(store, { recheckMs: 10, now: () => now });
    await library.import('harbour', [doc('data-protection.md', passwords)], 'coord-1');
    const first = await reader.index('harbour');
    now += 11;
    expect(await reader.index('harbour')).toBe(first);
  });
});

describe("coordinators' saved answers", () => {
  it('become searchable and are cited as the coordinator\'s answer with its date', async () => {
    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV1), doc('data-protection.md', passwords)], 'coord-1');
    await library.saveAnswer('harbour', {
      id: 'esc-1',
      question: 'when is the staff christmas party',
      answer: 'The staff christmas party is on Friday 18 December in the school hall.',
      answeredBy: 'coord-1',
      answeredAt: '2026-11-20T10:00:00.000Z',
    });

    const index = await library.index('harbour');
    const decision = decideAnswer(index, 'when is the staff christmas party this year?');
    expect(decision).toMatchObject({ intent: 'question', abstained: false });
    const section = decision.hit!.section;
    expect(section).toMatchObject({ id: `${SAVED_ANSWER_DOC}#esc-1`, docId: SAVED_ANSWER_DOC, version: '2026-11-20' });

    const saved = library.savedAnswer('harbour', section.id);
    expect(saved).toMatchObject({ answeredBy: 'coord-1', answeredAt: '2026-11-20T10:00:00.000Z' });
    const card = answerCard(section, 'q-1', saved);
    expect(card.title).toBe('The coordinator has answered this before');
    expect(card.subtitle).toBe('Answered by the e-safety coordinator on 2026-11-20');
    expect(card.blocks[0]).toMatchObject({ type: 'quote', text: 'The staff christmas party is on Friday 18 December in the school hall.' });
  });

  it('replaces a saved answer given again under the same id, and keeps the policies', async () => {
    await library.import('harbour', [doc('data-protection.md', passwords)], 'coord-1');
    const base = { id: 'esc-1', question: 'when is the staff christmas party', answeredBy: 'coord-1', answeredAt: '2026-11-20T10:00:00.000Z' };
    await library.saveAnswer('harbour', { ...base, answer: 'Friday 18 December.' });
    await library.saveAnswer('harbour', { ...base, answer: 'Moved to Thursday 17 December.' });
    const index = await library.index('harbour');
    const saved = [...index.sections.values()].filter((s) => s.docId === SAVED_ANSWER_DOC);
    expect(saved.map((s) => s.text)).toEqual(['Moved to Thursday 17 December.']);
    expect(index.sections.has('data-protection#passwords')).toBe(true);
  });
});

describe('schools never see each other\'s policies', () => {
  it('keeps imports, versions, search and saved answers apart', async () => {
    await library.import('harbour', [doc('mobile-and-personal-devices.md', devicesV1)], 'coord-h');
    await library.import('brigid', [doc('allotment-club.md', gardening)], 'coord-b');
    await library.saveAnswer('brigid', { id: 'esc-b', question: 'where is the greenhouse key kept', answer: 'In the caretaker office.', answeredBy: 'coord-b', answeredAt: '2026-11-01T09:00:00.000Z' });

    expect((await library.list('harbour')).map((e) => e.docId)).toEqual(['mobile-and-personal-devices']);
    expect((await library.list('brigid')).map((e) => e.docId)).toEqual(['allotment-club']);
    expect(await library.getVersion('harbour', 'allotment-club')).toBeUndefined();
    expect(await library.getVersion('brigid', 'mobile-and-personal-devices')).toBeUndefined();
    const brigidHash = doc('allotment-club.md', gardening).hash;
    expect(await library.getVersion('harbour', 'allotment-club', brigidHash)).toBeUndefined();

    const harbour = await library.index('harbour');
    const brigid = await library.index('brigid');
    expect([...harbour.sections.keys()].every((id) => id.startsWith('mobile-and-personal-devices#'))).toBe(true);
    expect([...brigid.sections.keys()].sort()).toEqual(['allotment-club#watering-rota', `${SAVED_ANSWER_DOC}#esc-b`]);
    // Brigid's words find nothing of Brigid's from Harbour's library, and the reverse.
    const fromHarbour = harbour.search('tomato beds watering rota greenhouse key');
    expect(fromHarbour === undefined || fromHarbour.section.docId === 'mobile-and-personal-devices').toBe(true);
    const asked = harbour.search('where is the greenhouse key kept');
    expect(asked?.section.docId).not.toBe(SAVED_ANSWER_DOC);
    const fromBrigid = brigid.search('pupils phones confiscated in lessons');
    expect(fromBrigid === undefined || !fromBrigid.section.id.startsWith('mobile')).toBe(true);
    expect(harbour.search('watering rota')).toBeUndefined();
    expect(library.savedAnswer('harbour', `${SAVED_ANSWER_DOC}#esc-b`)).toBeUndefined();
  });

  it('imports the same file into two schools as two independent versions', async () => {
    await library.import('harbour', [doc('data-protection.md', passwords)], 'coord-h');
    const report = await library.import('brigid', [doc('data-protection.md', passwords)], 'coord-b');
    expect(report.added).toEqual(['data-protection']);
    expect((await library.getVersion('harbour', 'data-protection'))!.importedBy).toBe('coord-h');
    expect((await library.getVersion('brigid', 'data-protection'))!.importedBy).toBe('coord-b');
  });
});
