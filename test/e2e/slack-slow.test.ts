/**
 * Slack allows 3 seconds to answer a request. A form's submission waits for the core (so a form
 * with mistakes can stay open with its errors), but never past 2.5 seconds: when the store is slow,
 * the modal is closed in time and the answer follows in the direct message.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderModal } from '../../src/adapters/slack/block-kit.ts';
import { escalationCard, type EscalationRecord } from '../../src/bot/features/qa.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { blocksText, slackRequests, startFakeSlack, viewState, type FakeSlack } from '../helpers/fake-slack.ts';

const TEAM = 'T0SLOW';
const SCHOOL = 'slow-school';
const signingSecret = randomBytes(16).toString('hex');
let running: RunningApp;
let slack: FakeSlack;
let slowEscalations = false;

/** The real store, with reads of escalations taking 3.5 seconds while `slowEscalations` is set. */
function slowStore(inner: Store): Store {
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'get') {
        return async (key: { kind: string }) => {
          if (slowEscalations && key.kind === 'escalation') await new Promise((resolve) => setTimeout(resolve, 3500));
          return target.get(key as never);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

beforeAll(async () => {
  slack = await startFakeSlack();
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-slow-'));
  const store = slowStore(await createSqliteStore({ file: path.join(dataDir, 'esafety.sqlite') }));
  running = await startApp({ SLACK_SIGNING_SECRET: signingSecret, SLACK_BOT_TOKEN: 'xoxb-slow', SLACK_API_URL: `${slack.url}/api/` }, { store, dataDir });
  await running.app.directory.upsertSchool({ id: SCHOOL, name: 'Slow School', slackTeam: TEAM });
  await running.app.directory.noteUserSeen(SCHOOL, { id: 'U0COORD', platform: 'slack', reference: { teamId: TEAM, userId: 'U0COORD', channel: 'D0COORD' } });
  await running.app.directory.grantRole(SCHOOL, 'U0COORD', 'coordinator');
});
afterAll(async () => {
  await running?.stop();
  await slack?.close();
});

describe('a slow core behind a modal', () => {
  it('closes the modal within 3 seconds and sends the answer to the DM when it comes', async () => {
    const escalation: EscalationRecord = { id: 'esc-slow', questionId: 'q-slow', question: 'Is there a policy on drones?', askedBy: 'U0ASKER', askedAt: new Date().toISOString(), status: 'open' };
    await running.app.store.create({ kind: 'escalation', school: SCHOOL, id: escalation.id }, escalation);
    const view = { ...renderModal(escalationCard(escalation), { conversation: { id: 'D0COORD', kind: 'personal' } }), id: 'V0SLOW' } as Record<string, any>;
    const payload = {
      type: 'view_submission',
      team: { id: TEAM },
      user: { id: 'U0COORD', username: 'casey', team_id: TEAM },
      api_app_id: 'A0TEST',
      view: { ...view, state: { values: viewState(view, { answer: 'No drones on site.', save: false }) } },
    };
    slowEscalations = true;
    const before = slack.callsOf('chat.postMessage').length;
    const started = Date.now();
    const response = await slackRequests(running.url, signingSecret, TEAM).interaction(payload);
    const elapsed = Date.now() - started;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    expect(elapsed).toBeGreaterThanOrEqual(2400);
    expect(elapsed).toBeLessThan(3000);
    const posts = await slack.waitFor('chat.postMessage', before + 1, 10_000);
    const toCoordinator = posts.slice(before).find((call) => call.body.channel === 'D0COORD');
    expect(blocksText(toCoordinator!.body.blocks)).toMatch(/^Thanks\./);
    slowEscalations = false;
    const stored = await running.app.store.get<EscalationRecord>({ kind: 'escalation', school: SCHOOL, id: escalation.id });
    expect(stored?.data).toMatchObject({ status: 'answered', answer: 'No drones on site.', answeredBy: 'U0COORD' });
  }, 20_000);
});
