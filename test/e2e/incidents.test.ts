import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpServer } from '@zeit/cosmosdb-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';
import { memoryLog, type MemoryLog } from '../helpers/memory-log.ts';

let running: RunningApp;
let connector: FakeConnector;
let logs: MemoryLog;
const school = 'default';
const SECRET_DETAIL = 'zebra-marker-7731 told me about the photos';

/** Sends as `user` and returns the activities the bot sent to anyone during that turn. */
async function say(user: string, body: { text?: string; value?: Record<string, unknown> }, name = user) {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, userId: user, userName: name, ...body }));
  expect(response.status).toBe(200);
  return connector.activities.slice(before);
}

const sentTo = (activities: Awaited<ReturnType<typeof say>>, user: string) => activities.filter((a) => a.conversationId === `a:conv-${user}`);

function validReport(draftId: string, overrides: Record<string, unknown> = {}) {
  return {
    route: 'incident.submit',
    draftId,
    category: 'nudes',
    riskAreas: 'conduct',
    childAtRisk: 'true',
    occurredAt: '2026-11-24T09:15',
    place: 'Year 9 form room',
    details: SECRET_DETAIL,
    pupils: 'A (Y9)',
    actionsTaken: 'Kept the phone switched off in the office',
    dslToldInPerson: 'false',
    ...overrides,
  };
}

async function startReport(user: string): Promise<{ draftId: string; card: Record<string, any> }> {
  const replies = sentTo(await say(user, { text: 'report an incident' }), user);
  const card = cardOf(replies[0]!.activity)!;
  const submit = card.actions.find((a: any) => a.data?.route === 'incident.submit');
  return { draftId: submit.data.draftId, card };
}

// The same report-to-case journey on both stores: the embedded default and a local Cosmos DB server.
let cosmos: Server | undefined;
describe.each(['sqlite', 'cosmos'] as const)('on the %s store', (storeKind) => {
  beforeAll(async () => {
    connector = await startFakeConnector();
    logs = memoryLog('debug');
    if (storeKind === 'cosmos') {
      cosmos = createHttpServer();
      await new Promise<void>((resolve) => cosmos!.listen(0, '127.0.0.1', resolve));
      const endpoint = `http://127.0.0.1:${(cosmos.address() as AddressInfo).port}`;
      running = await startApp({ STORE: 'cosmos', COSMOS_ENDPOINT: endpoint, COSMOS_KEY: 'dummy-key-for-the-local-server', COSMOS_DATABASE: `esafety-incidents-${randomUUID()}` }, { log: logs.log });
    } else running = await startApp({}, { log: logs.log });
    for (const [user, role] of [['dsl-1', 'dsl'], ['deputy-1', 'deputy-dsl'], ['mgmt-1', 'management'], ['head-1', 'headteacher'], ['chair-1', 'chair-of-governors']] as const) {
      await running.app.directory.grantRole(school, user, role);
      await say(user, { text: 'hello' }, `${role} person`);
    }
    await say('staff-2', { text: 'hello' }, 'Sam Staff');
    await running.app.directory.grantRole(school, 'staff-2', 'dsl');
  });
  afterAll(async () => {
    await running.stop();
    await connector.close();
    if (cosmos) await new Promise((resolve) => cosmos!.close(resolve));
    cosmos = undefined;
  });

  describe('reporting an incident through the card', () => {
    it('opens a form with the immediate steps first and every field of the report', async () => {
      const { card } = await startReport('teacher-0');
      const shown = cardText(card);
      expect(shown).toMatch(/Do not view, copy, print, forward/);
      const ids = JSON.stringify(card).match(/"id":"[a-zA-Z]+"/g)!.map((m) => m.slice(6, -1));
      expect(ids).toEqual(expect.arrayContaining(['category', 'riskAreas', 'childAtRisk', 'occurredAt', 'place', 'details', 'pupils', 'devices', 'actionsTaken', 'evidence', 'dslToldInPerson', 'dslToldAt']));
    });

    it('shows a clear message per missing field and keeps what was typed', async () => {
      const { draftId } = await startReport('teacher-2');
      const replies = sentTo(await say('teacher-2', { value: { route: 'incident.submit', draftId, place: 'Library' } }), 'teacher-2');
      const card = cardOf(replies[0]!.activity)!;
      const shown = cardText(card);
      expect(shown).toMatch(/What kind of concern is it\?: please answer this/);
      expect(shown).toMatch(/Is a child at risk of harm right now\?: please answer this/);
      expect(JSON.stringify(card)).toContain('"value":"Library"');
      const draft = await running.app.store.get<{ values: Record<string, unknown> }>({ kind: 'incident-draft', school, id: draftId });
      expect(draft?.data.values.place).toBe('Library');
    });

    it('stores one case for a double-clicked submit, alerts the DSL with category and reference only, and tells the reporter the reference', async () => {
      const { draftId } = await startReport('teacher-1');
      const before = connector.activities.length;
      await Promise.all([say('teacher-1', { value: validReport(draftId) }), say('teacher-1', { value: validReport(draftId) })]);
      // Both turns ran concurrently, so everything sent since `before` belongs to the pair.
      const sent = connector.activities.slice(before);
      const texts = sentTo(sent, 'teacher-1').map((a) => a.activity.text as string);
      const refs = texts.map((t) => /INC-\d{4}-\d{4}/.exec(t)?.[0]);
      expect(refs).toHaveLength(2);
      expect(refs[0]).toBeDefined();
      expect(refs[0]).toBe(refs[1]);
      expect(texts.filter((t) => /already sent/.test(t))).toHaveLength(1);
      const cases = (await running.app.store.list<any>('case', school)).filter((r) => r.data.draftId === draftId);
      expect(cases).toHaveLength(1);
      const dslAlerts = sentTo(sent, 'dsl-1');
      expect(dslAlerts).toHaveLength(1);
      const alert = JSON.stringify(dslAlerts[0]!.activity);
      expect(alert).toContain(refs[0]);
      expect(alert).toMatch(/Sharing nudes or semi/);
      expect(alert).not.toContain('zebra-marker');
      expect(alert).not.toContain('Year 9 form room');
      // The management team hear too.
      expect(sentTo(sent, 'mgmt-1')).toHaveLength(1);
      expect(texts.join('\n')).toMatch(/tell the DSL in person/);
    });

    it('never writes report content to the logs at any level', () => {
      expect(logs.raw().join('\n')).not.toContain('zebra-marker');
      expect(logs.raw().join('\n')).not.toContain('Year 9 form room');
    });

    it('lets the DSL and the reporter read the case, refuses other staff, and audits both', async () => {
      const [record] = (await running.app.store.list<any>('case', school)).map((r) => r.data);
      const dslView = sentTo(await say('dsl-1', { text: `case ${record.ref}` }), 'dsl-1');
      expect(cardText(cardOf(dslView[0]!.activity))).toContain('zebra-marker-7731');
      const own = sentTo(await say('teacher-1', { text: `case ${record.ref}` }), 'teacher-1');
      expect(cardText(cardOf(own[0]!.activity))).toContain('zebra-marker-7731');
      const other = sentTo(await say('teacher-9', { text: `case ${record.ref}` }), 'teacher-9');
      expect(other[0]!.activity.text).toMatch(/no case .* that you can see/i);
      const audit = (await running.app.store.list<any>('audit', school)).map((r) => r.data).filter((e) => e.target === record.ref && e.action === 'incident.open');
      expect(audit.map((e) => `${e.actor}:${e.outcome}`)).toEqual(expect.arrayContaining(['dsl-1:ok', 'teacher-1:ok', 'teacher-9:refused']));
    });

    it('refuses a stale card after the case has moved on, overwriting nothing', async () => {
      const [record] = (await running.app.store.list<any>('case', school)).map((r) => r.data);
      const first = sentTo(await say('dsl-1', { value: { route: 'incident.update', ref: record.ref, rev: record.rev, status: 'triaged', entry: 'Spoke to the pupil', entryKind: 'action' } }), 'dsl-1');
      expect(first[0]!.activity.text).toMatch(/Saved .*status/);
      const stale = sentTo(await say('mgmt-1', { value: { route: 'incident.update', ref: record.ref, rev: record.rev, status: 'closed' } }), 'mgmt-1');
      expect(stale[0]!.activity.text).toMatch(/has changed since that card was sent/);
      const now = await running.app.store.get<any>({ kind: 'case', school, id: record.ref });
      expect(now!.data.status).toBe('triaged');
    });

    it('refuses a reporter or plain staff changing a case, and audits the attempt', async () => {
      const [record] = (await running.app.store.list<any>('case', school)).map((r) => r.data);
      const replies = sentTo(await say('teacher-1', { value: { route: 'incident.update', ref: record.ref, rev: record.rev, status: 'closed' } }), 'teacher-1');
      expect(replies[0]!.activity.text).toMatch(/no case .* that you can change/i);
      const audit = (await running.app.store.list<any>('audit', school)).map((r) => r.data);
      expect(audit.some((e) => e.actor === 'teacher-1' && e.action === 'incident.update' && e.outcome === 'refused')).toBe(true);
    });

    it('sends a concern about a member of staff to the headteacher only, and the subject never sees it whatever their roles', async () => {
      const { draftId } = await startReport('teacher-3');
      const turn = await say('teacher-3', { value: validReport(draftId, { category: 'staff-conduct', aboutHeadteacher: 'false', staffSubjects: 'staff-2', childAtRisk: 'false', riskAreas: 'contact' }) });
      const ref = /INC-\d{4}-\d{4}/.exec(sentTo(turn, 'teacher-3')[0]!.activity.text)![0];
      expect(turn.some((a) => a.conversationId === 'a:conv-head-1')).toBe(true);
      expect(turn.some((a) => a.conversationId === 'a:conv-dsl-1' || a.conversationId === 'a:conv-staff-2' || a.conversationId === 'a:conv-mgmt-1')).toBe(false);
      const subject = sentTo(await say('staff-2', { text: `case ${ref}` }), 'staff-2');
      expect(subject[0]!.activity.text).toMatch(/no case .* that you can see/i);
      const dsl = sentTo(await say('dsl-1', { text: `case ${ref}` }), 'dsl-1');
      expect(dsl[0]!.activity.text).toMatch(/no case .* that you can see/i);
    });

    it('sends a concern about the headteacher to the chair of governors alone', async () => {
      const { draftId } = await startReport('teacher-4');
      const turn = await say('teacher-4', { value: validReport(draftId, { category: 'staff-conduct', aboutHeadteacher: 'true', staffSubjects: 'head-1', childAtRisk: 'false' }) });
      expect(turn.some((a) => a.conversationId === 'a:conv-chair-1')).toBe(true);
      expect(turn.some((a) => a.conversationId === 'a:conv-head-1' || a.conversationId === 'a:conv-dsl-1')).toBe(false);
    });

    it('escalates an unacknowledged child-protection alert to the deputies and the headteacher through a durable job', async () => {
      const { draftId } = await startReport('teacher-8');
      const turn = await say('teacher-8', { value: validReport(draftId) });
      const ref = /INC-\d{4}-\d{4}/.exec(sentTo(turn, 'teacher-8')[0]!.activity.text)![0];
      // notify() scheduled the escalation as a job in the store, due after INCIDENT_ESCALATE_MINUTES.
      const job = await running.app.store.get<any>({ kind: 'job', school, id: `incident-escalation-${ref}` });
      expect(job).toBeDefined();
      expect(Date.parse(job!.data.runAt)).toBeGreaterThan(Date.now() + 10 * 60_000);
      // Bring it forward rather than wait: the same id replaces the pending job.
      await running.app.jobs.schedule({ school, id: `incident-escalation-${ref}`, kind: 'incident.escalate', runAt: new Date(Date.now() - 1000), payload: { ref } });
      const before = connector.activities.length;
      await running.app.jobs.runDue();
      for (let i = 0; i < 50 && !connector.activities.slice(before).some((a) => a.conversationId === 'a:conv-head-1'); i++) await new Promise((r) => setTimeout(r, 50));
      const escalated = connector.activities.slice(before);
      for (const user of ['deputy-1', 'head-1']) {
        const alert = escalated.find((a) => a.conversationId === `a:conv-${user}`);
        expect(cardText(cardOf(alert!.activity))).toMatch(/Escalated to you: not acknowledged/);
      }
      const audit = (await running.app.store.list<any>('audit', school)).map((r) => r.data);
      expect(audit.some((e) => e.action === 'incident.escalate' && e.target === ref)).toBe(true);
    });

    it('lets the DSL acknowledge an alert once', async () => {
      const [record] = (await running.app.store.list<any>('case', school)).map((r) => r.data);
      const first = sentTo(await say('dsl-1', { value: { route: 'incident.ack', ref: record.ref } }), 'dsl-1');
      expect(first[0]!.activity.text).toMatch(/Acknowledged/);
      const again = sentTo(await say('dsl-1', { value: { route: 'incident.ack', ref: record.ref } }), 'dsl-1');
      expect(again[0]!.activity.text).toMatch(/already acknowledged/);
    });

    it('keeps a draft across a restart of the conversation and offers to resume or cancel it', async () => {
      const { draftId } = await startReport('teacher-5');
      const again = sentTo(await say('teacher-5', { text: 'report an incident' }), 'teacher-5');
      const card = cardOf(again[0]!.activity)!;
      expect(cardText(card)).toMatch(/unfinished report/);
      expect(card.actions.map((a: any) => a.data.route)).toEqual(['incident.resume', 'incident.cancel']);
      const cancelled = sentTo(await say('teacher-5', { value: { route: 'incident.cancel', draftId } }), 'teacher-5');
      expect(cancelled[0]!.activity.text).toMatch(/cancelled/);
      expect(await running.app.store.get({ kind: 'incident-draft', school, id: draftId })).toBeUndefined();
    });

    it('offers to report when a message reads as a disclosure', async () => {
      const replies = sentTo(await say('teacher-6', { text: 'a pupil just told me someone online keeps asking her for photos' }), 'teacher-6');
      const offer = replies.map((r) => cardOf(r.activity)).find((c) => JSON.stringify(c).includes('incident.start'));
      expect(offer).toBeDefined();
    });

    it('shows the governors counts without personal details, and refuses plain staff', async () => {
      const refused = sentTo(await say('teacher-1', { text: 'governors report' }), 'teacher-1');
      expect(refused[0]!.activity.text).toMatch(/Only governors/);
      await running.app.directory.grantRole(school, 'gov-1', 'governor');
      const report = sentTo(await say('gov-1', { text: 'governors report year' }), 'gov-1');
      const shown = JSON.stringify(cardOf(report[0]!.activity));
      expect(shown).toMatch(/Sharing nudes or semi/);
      expect(shown).not.toContain('zebra-marker');
      expect(shown).not.toContain('teacher-1');
    });
  });

  describe('images and files', () => {
    it('refuses an image sent to the bot, says why, and stores nothing from it', async () => {
      const before = connector.activities.length;
      const activity = { ...messageActivity({ serviceUrl: connector.url, userId: 'teacher-7', text: 'this is the pic' }), attachments: [{ contentType: 'image/png', contentUrl: 'http://127.0.0.1:1/x.png', name: 'x.png' }] };
      const response = await running.post('/api/messages', activity);
      expect(response.status).toBe(200);
      const [reply] = connector.activities.slice(before);
      expect(reply!.activity.text).toMatch(/never accept images/);
      const questions = (await running.app.store.list<any>('question', school)).filter((r) => r.data.askedBy === 'teacher-7');
      expect(questions).toHaveLength(0);
    });
  });
});
