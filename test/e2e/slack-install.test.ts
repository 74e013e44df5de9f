/**
 * The two ways a school connects Slack. Without a bot token, slash commands still work: the answer
 * goes through the command's response_url. With SLACK_CLIENT_ID/SECRET/STATE_SECRET, the app is
 * installed per workspace through OAuth on the same server (/slack/install, /slack/oauth_redirect),
 * and Bolt's installation store is kept in our Store; each workspace's own token is then used.
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installationKey, StoreInstallationStore } from '../../src/adapters/slack/installation-store.ts';
import { createSlackChannel } from '../../src/adapters/slack/slack-channel.ts';
import { DeliveryError } from '../../src/delivery/types.ts';
import { silentLogger } from '../../src/logger.ts';
import { loadPolicyDirectory } from '../../src/policies/load.ts';
import { GLOBAL_PARTITION } from '../../src/store/store.ts';
import { repoRoot, startApp, type RunningApp } from '../helpers/app.ts';
import { blocksText, oauthSlackSettings, slackRequests, startFakeSlack, type FakeSlack } from '../helpers/fake-slack.ts';

const signingSecret = randomBytes(16).toString('hex');
let slack: FakeSlack;

beforeAll(async () => {
  slack = await startFakeSlack();
});
afterAll(async () => {
  await slack?.close();
});

async function importPolicies(running: RunningApp, school: string): Promise<void> {
  const loaded = await loadPolicyDirectory(path.join(repoRoot, 'policies'));
  await running.app.library.import(school, loaded.documents, 'test');
}

/** The POST to response URL `id`, once it has arrived (the fake's own wait). */
const responseTo = (id: string) => slack.responseTo(id);

describe('without a bot token', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({ SLACK_SIGNING_SECRET: signingSecret, SLACK_API_URL: `${slack.url}/api/` });
    await running.app.directory.upsertSchool({ id: 'tokenless', name: 'Tokenless School', slackTeam: 'T0NOTOKEN' });
    await importPolicies(running, 'tokenless');
  });
  afterAll(async () => {
    await running?.stop();
  });

  it('answers /aup through the response_url, with no Web API call at all', async () => {
    const before = slack.calls.filter((c) => c.method !== 'response_url').length;
    const requests = slackRequests(running.url, signingSecret, 'T0NOTOKEN');
    const response = await requests.command({ command: '/aup', text: 'what should I do if I lose my school laptop?', user_id: 'U0NT', channel_id: 'C0NT', response_url: slack.responseUrl('notoken-1'), trigger_id: 't' });
    expect(response.status).toBe(200);
    const reply = await responseTo('notoken-1');
    expect(reply.body.response_type).toBe('ephemeral');
    expect(reply.body.blocks[0].type).toBe('header');
    expect(blocksText(reply.body.blocks).length).toBeGreaterThan(100);
    expect(slack.calls.filter((c) => c.method !== 'response_url').length).toBe(before);
  });

  it('still answers /report-incident (the form cannot open as a modal without a token, so it comes as a message)', async () => {
    const requests = slackRequests(running.url, signingSecret, 'T0NOTOKEN');
    await requests.command({ command: '/report-incident', text: '', user_id: 'U0NT2', channel_id: 'C0NT', response_url: slack.responseUrl('notoken-2'), trigger_id: 't2' });
    const reply = await responseTo('notoken-2');
    expect(reply.body.blocks[0].text.text).toBe('Report an incident or concern');
    expect(blocksText(reply.body.blocks)).toContain('Open form');
  });
});

describe('installed through OAuth, one workspace at a time', () => {
  let running: RunningApp;
  let installPage: Response;
  let state: string;
  let cookie: string;

  beforeAll(async () => {
    running = await startApp(oauthSlackSettings(slack, signingSecret));
    await running.app.directory.upsertSchool({ id: 'installed', name: 'Installed School', slackTeam: 'T0INSTALL' });
    await importPolicies(running, 'installed');
  });
  afterAll(async () => {
    await running?.stop();
  });

  it('serves the install page on the same server, with a state bound to this browser by a cookie', async () => {
    installPage = await fetch(`${running.url}/slack/install`);
    expect(installPage.status).toBe(200);
    const html = await installPage.text();
    const link = /href="(https:\/\/slack\.com[^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
    expect(html).toContain('Add to Slack');
    expect(link).toBeDefined();
    const url = new URL(link!);
    expect(url.origin + url.pathname).toBe('https://slack.com/oauth/v2/authorize');
    expect(url.searchParams.get('client_id')).toBe('1234.5678');
    expect(url.searchParams.get('scope')!.split(',')).toEqual(expect.arrayContaining(['chat:write', 'commands', 'im:history', 'im:write', 'users:read', 'app_mentions:read']));
    expect(url.searchParams.get('redirect_uri')).toBe('https://esafety.school.example/slack/oauth_redirect');
    state = url.searchParams.get('state')!;
    cookie = installPage.headers.get('set-cookie')!.split(';')[0]!;
    expect(cookie).toBe(`slack-app-oauth-state=${state}`);
  });

  it('refuses the redirect with a state from another browser, storing nothing', async () => {
    const response = await fetch(`${running.url}/slack/oauth_redirect?code=stolen&state=${encodeURIComponent(state)}`);
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/did not finish/);
    expect(await running.app.store.list('slack-installation', GLOBAL_PARTITION)).toEqual([]);
  });

  it('finishes the install: exchanges the code (oauth.v2.access), keeps the installation in the store, and says how to link the school', async () => {
    const response = await fetch(`${running.url}/slack/oauth_redirect?code=the-code&state=${encodeURIComponent(state)}`, { headers: { cookie } });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('--slack-team T0INSTALL');
    const [exchange] = slack.callsOf('oauth.v2.access');
    expect(exchange!.body).toMatchObject({ code: 'the-code', client_id: '1234.5678', redirect_uri: 'https://esafety.school.example/slack/oauth_redirect' });
    const stored = await running.app.store.get<{ bot: { token: string; userId: string }; team: { id: string } }>(installationKey({ teamId: 'T0INSTALL' }));
    expect(stored?.data).toMatchObject({ team: { id: 'T0INSTALL' }, bot: { token: 'xoxb-installed-token', userId: 'U0BOT' } });
  });

  it('reads the installed workspace\'s members (users.list) with its own token, off the request path', async () => {
    const [list] = await slack.waitFor('users.list');
    expect(list!.authorization).toBe('Bearer xoxb-installed-token');
    expect(String(list!.body.limit)).toBe('200');
    const sources = await running.app.store.list<{ platform: string; teamId: string }>('roster-source', 'installed');
    expect(sources.map((s) => s.data)).toEqual([expect.objectContaining({ platform: 'slack', teamId: 'T0INSTALL' })]);
  });

  it('answers that workspace with its own token', async () => {
    const before = slack.callsOf('chat.postMessage').length;
    const requests = slackRequests(running.url, signingSecret, 'T0INSTALL');
    await requests.event({ type: 'message', channel_type: 'im', channel: 'D0INST', user: 'U0INST', text: 'whoami', ts: '1.1' });
    const [post] = (await slack.waitFor('chat.postMessage', before + 1)).slice(before);
    expect(post!.authorization).toBe('Bearer xoxb-installed-token');
    expect(blocksText(post!.body.blocks)).toContain('Installed School (installed)');
  });

  it('acknowledges, but does not answer, a workspace where it is not installed', async () => {
    const before = slack.calls.length;
    const requests = slackRequests(running.url, signingSecret, 'T0ELSEWHERE');
    const response = await requests.event({ type: 'message', channel_type: 'im', channel: 'D0ELSE', user: 'U0ELSE', text: 'whoami', ts: '1.2' });
    expect(response.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(slack.calls.slice(before)).toEqual([]);
  });

  it('sends proactive messages with the installed token, and refuses (permanent) a workspace without an install', async () => {
    const channel = createSlackChannel({ settings: running.settings.slack!, publicUrl: running.settings.publicUrl, bot: running.app.bot, store: running.app.store, directory: running.app.directory, log: silentLogger() });
    const before = slack.callsOf('chat.postMessage').length;
    await channel.send({ teamId: 'T0INSTALL', userId: 'U0INST', channel: 'D0INST' }, [{ type: 'text', text: 'hello' }]);
    expect(slack.callsOf('chat.postMessage').slice(before).map((c) => c.authorization)).toEqual(['Bearer xoxb-installed-token']);
    const error = await channel.send({ teamId: 'T0ELSEWHERE', userId: 'U0ELSE' }, [{ type: 'text', text: 'hello' }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeliveryError);
    expect(error).toMatchObject({ kind: 'permanent', message: expect.stringMatching(/not installed/) });
  });

  it('forgets the installation when the app is uninstalled', async () => {
    const requests = slackRequests(running.url, signingSecret, 'T0INSTALL');
    const response = await requests.event({ type: 'app_uninstalled' });
    expect(response.status).toBe(200);
    for (let i = 0; i < 50 && (await running.app.store.get(installationKey({ teamId: 'T0INSTALL' }))); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await running.app.store.get(installationKey({ teamId: 'T0INSTALL' }))).toBeUndefined();
  });
});

describe('the installation store', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({});
  });
  afterAll(async () => {
    await running?.stop();
  });

  const installation = (teamId: string, token: string) => ({
    team: { id: teamId, name: 'A school' },
    enterprise: undefined,
    user: { id: 'U0ADMIN', token: undefined, scopes: undefined },
    bot: { token, scopes: ['chat:write'], id: 'B0', userId: 'U0BOT' },
    isEnterpriseInstall: false as const,
    authVersion: 'v2' as const,
  });

  it('replaces an installation on reinstall, and two instances storing at once both succeed (etag-checked)', async () => {
    const store = new StoreInstallationStore(running.app.store);
    const other = new StoreInstallationStore(running.app.store);
    await store.storeInstallation(installation('T0RE', 'xoxb-1'));
    await Promise.all([store.storeInstallation(installation('T0RE', 'xoxb-2')), other.storeInstallation(installation('T0RE', 'xoxb-3'))]);
    const fetched = await store.fetchInstallation({ teamId: 'T0RE', isEnterpriseInstall: false, enterpriseId: undefined });
    expect(['xoxb-2', 'xoxb-3']).toContain(fetched.bot?.token);
    expect(await running.app.store.list('slack-installation', GLOBAL_PARTITION)).toHaveLength(1);
  });

  it('finds an org-wide install for a workspace of the organisation, and says when there is none', async () => {
    const store = new StoreInstallationStore(running.app.store);
    await store.storeInstallation({ ...installation('T0IGNORED', 'xoxb-org'), team: undefined, enterprise: { id: 'E0ORG', name: 'Trust' }, isEnterpriseInstall: true } as never);
    expect((await store.fetchInstallation({ teamId: 'T0MEMBER', enterpriseId: 'E0ORG', isEnterpriseInstall: false })).bot?.token).toBe('xoxb-org');
    await expect(store.fetchInstallation({ teamId: 'T0NONE', enterpriseId: undefined, isEnterpriseInstall: false })).rejects.toThrow(/not installed/);
    await store.deleteInstallation({ teamId: undefined, enterpriseId: 'E0ORG', isEnterpriseInstall: true });
    await expect(store.fetchInstallation({ teamId: 'T0MEMBER', enterpriseId: 'E0ORG', isEnterpriseInstall: false })).rejects.toThrow(/not installed/);
  });
});
