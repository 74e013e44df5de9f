import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';

let running: RunningApp;
let connector: FakeConnector;

beforeAll(async () => {
  connector = await startFakeConnector();
  running = await startApp();
});
afterAll(async () => {
  await running.stop();
  await connector.close();
});

describe('a question through /api/messages', () => {
  it('answers with the quoted rule, cited by document, section and version', async () => {
    const before = connector.activities.length;
    const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'can kids use their mobiles in my lesson?' }));
    expect(response.status).toBe(200);
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    const card = cardOf(reply!.activity);
    expect(card?.type).toBe('AdaptiveCard');
    const shown = cardText(card);
    expect(shown).toMatch(/Mobile (Phones )?and Personal Devices/i);
    expect(shown).toMatch(/version 2026/);
    expect(card?.actions.map((a: any) => a.title)).toEqual(expect.arrayContaining(['Ask the coordinator', 'Helpful']));
  });

  it('says plainly when the policies do not cover a question and offers the coordinator', async () => {
    const before = connector.activities.length;
    await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'when is the staff christmas party this year' }));
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    const card = cardOf(reply!.activity);
    expect(cardText(card)).toMatch(/don't cover that/);
    expect(card?.actions[0].data.route).toBe('qa.escalate');
  });

  it('shows the immediate safeguarding steps first for a disclosure', async () => {
    const before = connector.activities.length;
    await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'a pupil just told me someone online keeps asking her for photos' }));
    const replies = (await connector.waitFor(before + 2)).slice(before);
    expect(cardText(cardOf(replies[0]!.activity))).toMatch(/Do not view, copy, print, forward/);
    expect(cardText(cardOf(replies[1]!.activity))).toMatch(/What our policy says/);
  });

  it('tells the Emulator user who they are', async () => {
    const before = connector.activities.length;
    await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'whoami', userId: 'it-admin' }));
    const [reply] = (await connector.waitFor(before + 1)).slice(before);
    const shown = cardText(cardOf(reply!.activity));
    expect(shown).toContain('User id: it-admin');
    expect(shown).toContain('Roles: staff');
  });
});
