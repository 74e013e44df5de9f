import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policies/markdown.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startFakeConnector, type FakeConnector } from '../helpers/fake-connector.ts';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../helpers/app.ts';

let running: RunningApp;
let connector: FakeConnector;
const school = 'default';
const doc = 'staff-acceptable-use';

async function say(user: string, body: { text?: string; value?: Record<string, unknown> }) {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, userId: user, userName: `Name ${user}`, ...body }));
  expect(response.status).toBe(200);
  return connector.activities.slice(before).filter((a) => a.conversationId === `a:conv-${user}`);
}

/** Waits until `user` has received a card of `kind`-ish content, delivered by the outbox worker. */
async function cardFor(user: string, pattern: RegExp, from = 0) {
  for (let i = 0; i < 100; i++) {
    const found = connector.activities.slice(from).find((a) => a.conversationId === `a:conv-${user}` && pattern.test(cardText(cardOf(a.activity))));
    if (found) return cardOf(found.activity)!;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no card matching ${pattern} for ${user}`);
}

async function importNewVersion(extra: string) {
  const raw = await readFile(path.join(repoRoot, 'policies', `${doc}.md`), 'utf8');
  const changed = raw.replace('## Scope', `## Scope\n\n${extra}\n`).replace(/^version: .*$/m, `version: 2026.${Math.floor(Math.random() * 1000) + 2}`);
  await running.app.library.import(school, [parsePolicy(`${doc}.md`, changed)], 'test');
}

beforeAll(async () => {
  connector = await startFakeConnector();
  running = await startApp();
  await running.app.directory.grantRole(school, 'coord-1', 'coordinator');
  for (const user of ['coord-1', 'staff-a', 'staff-b']) await say(user, { text: 'hello' });
  await importNewVersion('All staff must also complete the annual online safety quiz.');
});
afterAll(async () => {
  await running.stop();
  await connector.close();
});

describe('publishing a policy for acknowledgement', () => {
  let request: Record<string, any>;

  it('refuses a member of staff who tries to publish, and audits it', async () => {
    const [reply] = await say('staff-a', { text: `policies publish ${doc} to all due 2099-12-31` });
    expect(reply!.activity.text).toMatch(/Only the e-safety coordinator/);
    const audit = (await running.app.store.list<any>('audit', school)).map((r) => r.data);
    expect(audit.some((e) => e.actor === 'staff-a' && e.action === 'ack.publish' && e.outcome === 'refused')).toBe(true);
  });

  it('asks every member of staff to read what changed and accept', async () => {
    const from = connector.activities.length;
    const [reply] = await say('coord-1', { text: `policies publish ${doc} to all due 2099-12-31` });
    expect(reply!.activity.text).toMatch(/being asked to read and accept/);
    request = await cardFor('staff-a', /Please read and accept/, from);
    expect(cardText(request)).toMatch(/Changed: Scope/);
    expect(request.actions.map((a: any) => a.title)).toEqual(['Read the policy', 'I have read and accept']);
    await cardFor('staff-b', /Please read and accept/, from);
  });

  it('will not record acceptance before the person has opened the policy', async () => {
    const accept = request.actions[1].data;
    const [reply] = await say('staff-a', { value: accept });
    expect(reply!.activity.text).toMatch(/open the policy first/);
  });

  it('serves the version as a readable page through the signed link and refuses an altered one', async () => {
    const url: string = request.actions[0].url;
    const local = url.replace(/^https?:\/\/[^/]+/, running.url);
    const page = await fetch(local);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>Staff Acceptable Use Policy');
    expect(html).toContain('annual online safety quiz');
    const forged = await fetch(local.replace('/staff-a/', '/staff-b/'));
    expect(forged.status).toBe(404);
  });

  it('records one acceptance of exactly that version, even when clicked twice', async () => {
    const accept = request.actions[1].data;
    const [first] = await say('staff-a', { value: accept });
    expect(first!.activity.text).toMatch(/acceptance of .* is recorded/);
    const [second] = await say('staff-a', { value: accept });
    expect(second!.activity.text).toMatch(/already accepted/);
    const acks = await running.app.store.list<any>('ack', school);
    expect(acks.filter((a) => a.data.userId === 'staff-a')).toHaveLength(1);
  });

  it('shows the coordinator progress and who has not accepted', async () => {
    const [reply] = await say('coord-1', { text: `acks status ${doc}` });
    const shown = cardText(cardOf(reply!.activity));
    expect(shown).toMatch(/acknowledged 1 of \d+/);
    expect(shown).toContain('Name staff-b');
  });

  it('asks again for a new version and says the old request is superseded', async () => {
    await importNewVersion('Staff must report lost badges the same day.');
    const [reply] = await say('staff-b', { value: request.actions[1].data });
    expect(reply!.activity.text).toMatch(/newer version/);
  });

  it('answers an unknown version clearly', async () => {
    const [reply] = await say('staff-b', { value: { route: 'ack.accept', campaignId: 'camp-nothing-here' } });
    expect(reply!.activity.text).toMatch(/does not exist/);
  });
});

describe('coordinator alerts', () => {
  it('refuses empty and oversized alerts and sends nothing', async () => {
    const from = connector.activities.length;
    const [empty] = await say('coord-1', { text: 'alert critical' });
    expect(empty!.activity.text).toMatch(/Nothing was sent/);
    const [long] = await say('coord-1', { text: `alert ${'x'.repeat(2500)}` });
    expect(long!.activity.text).toMatch(/limit is 2000.*Nothing was sent/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(connector.activities.slice(from).filter((a) => a.conversationId !== 'a:conv-coord-1')).toHaveLength(0);
  });

  it('delivers a critical alert to every member of staff and reports progress', async () => {
    const from = connector.activities.length;
    const [reply] = await say('coord-1', { text: 'alert critical Fake "IT support" emails are asking for passwords. Do not reply.' });
    const id = /alert-\S+/.exec(reply!.activity.text)![0].replace(/\.$/, '');
    const card = await cardFor('staff-b', /Critical e-safety alert/, from);
    expect(cardText(card)).toContain('Fake "IT support" emails');
    await cardFor('staff-a', /Critical e-safety alert/, from);
    const [status] = await say('coord-1', { text: `alert status ${id}` });
    expect(cardText(cardOf(status!.activity))).toMatch(/Delivered: \d+ of \d+/);
  });

  it('refuses alerts from staff who are not coordinators', async () => {
    const [reply] = await say('staff-a', { text: 'alert everyone panic' });
    expect(reply!.activity.text).toMatch(/Only the e-safety coordinator/);
  });
});

describe('my acknowledgements and reviews', () => {
  it('lists what is waiting for me, and only versions that are current', async () => {
    // The version staff-b was asked about has been superseded and the new one not yet published.
    const [none] = await say('staff-b', { text: 'my acknowledgements' });
    expect(none!.activity.text).toMatch(/no policies waiting/);
    await say('coord-1', { text: `policies publish ${doc} due 2099-12-31` });
    const pending = await say('staff-b', { text: 'my acknowledgements' });
    expect(cardText(cardOf(pending[0]!.activity))).toMatch(/Please read and accept/);
  });

  it('shows the annual review status of every policy to the coordinator', async () => {
    const [reply] = await say('coord-1', { text: 'reviews' });
    expect(cardText(cardOf(reply!.activity))).toMatch(/review due|overdue/);
  });
});
