/**
 * Issue 7, "Must have" 4, telemetry hook: with APPLICATIONINSIGHTS_CONNECTION_STRING set, the real
 * app sends one event per turn (and per delivery) to the ingestion endpoint it names, in the track
 * API's envelope format: here a loopback fake of that endpoint. Nobody's words, name or id get there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppInsightsTelemetry, type Envelope } from '../../src/app-insights.ts';
import { cardOf, messageActivity } from '../helpers/activities.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { startFakeAppInsights, type FakeAppInsights } from '../helpers/fake-app-insights.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';

const IKEY = '0a1b2c3d-0000-4000-8000-00000000fee1';
const SCHOOL = 'default';
// Things people said or are called, that must never reach telemetry.
const SECRET_WORDS = 'Zebrafinch-Quartz-4471';
const TEACHER = { id: 'aad-teacher-9f3e77', name: 'Philippa Sentinelworth' };
const COORDINATOR = { id: 'aad-coord-51c0aa', name: 'Casimir Coordinatorson' };

let running: RunningApp;
let connector: FakeConnector;
let ingestion: FakeAppInsights;

beforeAll(async () => {
  ingestion = await startFakeAppInsights();
  connector = await startFakeConnector();
  running = await startApp({ APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString(IKEY) });
  await running.app.directory.grantRole(SCHOOL, COORDINATOR.id, 'coordinator');
});
afterAll(async () => {
  await running?.stop();
  await connector?.close();
  await ingestion?.close();
});

async function say(user: { id: string; name: string }, message: { text?: string; value?: Record<string, unknown> }) {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, userId: user.id, userName: user.name, ...message }));
  expect(response.status).toBe(200);
  return (await connector.waitFor(before + 1)).slice(before);
}

async function outboxSettled(): Promise<void> {
  while (!(await running.app.outbox.settled(SCHOOL))) await new Promise((resolve) => setTimeout(resolve, 10));
}

const events = (name: string) => ingestion.envelopes.filter((e) => e.data.baseType === 'EventData' && e.data.baseData.name === name);

describe('telemetry to Application Insights', () => {
  it('is the Application Insights exporter when the connection string is set', () => {
    expect(running.app.telemetry).toBeInstanceOf(AppInsightsTelemetry);
  });

  it('sends one event per turn: route, platform, school, duration, store operations and outcome, in the track envelope format', async () => {
    await say(COORDINATOR, { text: 'whoami' });
    await say(TEACHER, { text: `can pupils use phones in class? ${SECRET_WORDS}` });
    await (running.app.telemetry as AppInsightsTelemetry).flush();
    const turns = events('turn');
    expect(turns).toHaveLength(2);
    const question: Envelope = turns[1]!;
    expect(question).toMatchObject({
      name: `Microsoft.ApplicationInsights.${IKEY.replace(/-/g, '')}.Event`,
      iKey: IKEY,
      tags: { 'ai.cloud.role': 'esafety-bot', 'ai.operation.id': expect.any(String) },
      data: {
        baseType: 'EventData',
        baseData: { ver: 2, name: 'turn', properties: { route: 'qa.ask', platform: expect.any(String), school: SCHOOL, outcome: 'ok' } },
      },
    });
    expect(Date.parse(question.time)).not.toBeNaN();
    const measurements = question.data.baseData.measurements as Record<string, number>;
    expect(measurements.durationMs).toBeGreaterThanOrEqual(0);
    // A question turn: the conversation state read and the question log write at least.
    expect(measurements.storeOperations).toBeGreaterThanOrEqual(2);
    expect(Object.keys(question.data.baseData.properties as object).sort()).toEqual(['outcome', 'platform', 'route', 'school']);
  });

  it('sends one event per proactive delivery (the escalation reaching the coordinator)', async () => {
    const replies = await say(TEACHER, { text: `when is the staff christmas party ${SECRET_WORDS}` });
    const card = replies.map((r) => cardOf(r.activity)).find(Boolean)!;
    const escalate = card.actions.find((a: { title: string }) => a.title === 'Ask the coordinator');
    await say(TEACHER, { value: escalate.data });
    await outboxSettled();
    await (running.app.telemetry as AppInsightsTelemetry).flush();
    // The playground's demo coordinator (outside production) has no browser open: its attempt fails, and says so.
    const deliveries = events('delivery').filter((e) => (e.data.baseData.properties as Record<string, string>).platform === 'teams');
    expect(deliveries.map((e) => e.data.baseData.properties)).toEqual([{ school: SCHOOL, platform: 'teams', outcome: 'sent' }]);
    expect((deliveries[0]!.data.baseData.measurements as Record<string, number>).durationMs).toBeGreaterThanOrEqual(0);
    expect(events('turn').map((e) => (e.data.baseData.properties as Record<string, string>).route)).toContain('qa.escalate');
  });

  it('never carries message text, names or user ids', async () => {
    await say(TEACHER, { text: `a pupil sent nudes of ${SECRET_WORDS} to a group chat` });
    await (running.app.telemetry as AppInsightsTelemetry).flush();
    const everything = ingestion.bodies.join('\n');
    expect(ingestion.envelopes.length).toBeGreaterThanOrEqual(5);
    for (const forbidden of [SECRET_WORDS, 'phones in class', 'christmas', 'nudes', TEACHER.name, TEACHER.id, COORDINATOR.name, COORDINATOR.id, 'Philippa', 'Casimir']) {
      expect(everything, forbidden).not.toContain(forbidden);
    }
  });
});
