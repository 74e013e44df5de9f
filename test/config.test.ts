/**
 * Issue 2, "Must have" 4: configuration from the environment, validated at start-up, one clear line
 * per bad setting, and the production refusals. Ends with the real command line refusing to start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../src/config.ts';
import { AppError } from '../src/errors.ts';
import { repoRoot } from './helpers/app.ts';

/** The lines of the config_invalid error loadSettings throws for `env`. */
function problems(env: Record<string, string>): string[] {
  try {
    loadSettings(env);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('config_invalid');
    return (error as AppError).message.split('\n');
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

const production = {
  NODE_ENV: 'production',
  STORE: 'cosmos',
  COSMOS_ENDPOINT: 'https://example-account.documents.azure.com:443/',
  MICROSOFT_APP_ID: '00000000-0000-0000-0000-000000000001',
  MICROSOFT_APP_PASSWORD: 'test-password-not-a-secret',
};

describe('loadSettings', () => {
  it('has working defaults for a fresh clone', () => {
    const settings = loadSettings({});
    expect(settings).toMatchObject({
      port: 3978,
      host: '0.0.0.0',
      nodeEnv: 'development',
      production: false,
      logLevel: 'info',
      dataDir: path.resolve('./data'),
      defaultSchool: { id: 'default', name: 'Harbour Lane Academy' },
      policiesDir: path.resolve('./policies'),
      publicUrl: 'http://localhost:3978',
      store: { kind: 'sqlite', file: path.join(path.resolve('./data'), 'esafety.sqlite') },
      teams: { enabled: true, appId: undefined, appPassword: undefined, appType: 'MultiTenant' },
      roleCacheSeconds: 30,
      rateLimitPerMinute: 600,
    });
    expect(settings.slack).toBeUndefined();
  });

  it('reads the documented names', () => {
    const settings = loadSettings({
      PORT: '4000',
      DATA_DIR: '/tmp/somewhere',
      DEFAULT_SCHOOL: 'st-marys',
      STORE: 'cosmos',
      COSMOS_ENDPOINT: 'http://127.0.0.1:8081',
      COSMOS_KEY: 'k',
      COSMOS_DATABASE: 'db1',
      TEAMS_ENABLED: 'false',
      SLACK_SIGNING_SECRET: 's',
      SLACK_BOT_TOKEN: 'xoxb-test',
      SLACK_API_URL: 'http://127.0.0.1:9/api/',
      ROLE_CACHE_SECONDS: '0',
    });
    expect(settings.port).toBe(4000);
    expect(settings.dataDir).toBe('/tmp/somewhere');
    expect(settings.defaultSchool.id).toBe('st-marys');
    expect(settings.store).toEqual({ kind: 'cosmos', endpoint: 'http://127.0.0.1:8081/', key: 'k', database: 'db1', container: 'records' });
    expect(settings.teams.enabled).toBe(false);
    expect(settings.slack).toMatchObject({ signingSecret: 's', botToken: 'xoxb-test', apiUrl: 'http://127.0.0.1:9/api/' });
    expect(settings.roleCacheSeconds).toBe(0);
  });

  it('empty values count as unset', () => {
    expect(loadSettings({ PORT: '', STORE: '', TEAMS_ENABLED: '', MICROSOFT_APP_ID: ' ' })).toMatchObject({ port: 3978, store: { kind: 'sqlite' }, teams: { enabled: true, appId: undefined } });
  });

  it.each([
    [{ PORT: 'abc' }, /^PORT: /],
    [{ PORT: '70000' }, /^PORT: /],
    [{ STORE: 'mongo' }, /^STORE: .*sqlite.*cosmos/],
    [{ TEAMS_ENABLED: 'maybe' }, /^TEAMS_ENABLED: expected true or false, got "maybe"$/],
    [{ COSMOS_ENDPOINT: 'not a url' }, /^COSMOS_ENDPOINT: not a URL: "not a url"$/],
    [{ NODE_ENV: 'staging' }, /^NODE_ENV: /],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: /],
    [{ ROLE_CACHE_SECONDS: '120' }, /^ROLE_CACHE_SECONDS: /],
    [{ DEFAULT_SCHOOL: 'Not Valid' }, /^DEFAULT_SCHOOL: lowercase letters/],
    [{ MICROSOFT_APP_TYPE: 'Anything' }, /^MICROSOFT_APP_TYPE: /],
  ])('%o is refused with one line naming the variable', (env, line) => {
    const lines = problems(env as Record<string, string>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });

  it('several bad values give one line each', () => {
    const lines = problems({ PORT: 'abc', STORE: 'mongo', TEAMS_ENABLED: 'maybe' });
    expect(lines.map((line) => line.split(':')[0]).sort()).toEqual(['PORT', 'STORE', 'TEAMS_ENABLED']);
  });

  it('STORE=cosmos needs COSMOS_ENDPOINT', () => {
    expect(problems({ STORE: 'cosmos' })).toEqual(['COSMOS_ENDPOINT: required when STORE=cosmos']);
  });

  it('Slack settings without the signing secret are refused, in any environment', () => {
    expect(problems({ SLACK_BOT_TOKEN: 'xoxb-test' })).toEqual([expect.stringMatching(/^SLACK_SIGNING_SECRET: required/)]);
  });

  it('SingleTenant needs the tenant id', () => {
    expect(problems({ MICROSOFT_APP_ID: 'id', MICROSOFT_APP_PASSWORD: 'p', MICROSOFT_APP_TYPE: 'SingleTenant' })).toEqual([expect.stringMatching(/^MICROSOFT_APP_TENANT_ID: /)]);
  });
});

describe('NODE_ENV=production', () => {
  it('starts with Bot Framework credentials on Cosmos DB', () => {
    expect(loadSettings(production)).toMatchObject({ production: true, store: { kind: 'cosmos' }, teams: { enabled: true } });
  });

  it('refuses without MICROSOFT_APP_ID', () => {
    const { MICROSOFT_APP_ID: _omit, ...env } = production;
    expect(problems(env)).toEqual([expect.stringMatching(/^MICROSOFT_APP_ID: required in production/)]);
  });

  it('refuses without the app password', () => {
    const { MICROSOFT_APP_PASSWORD: _omit, ...env } = production;
    expect(problems(env)).toEqual([expect.stringMatching(/^MICROSOFT_APP_PASSWORD: required in production/)]);
  });

  it('accepts no password with a user-assigned managed identity', () => {
    const { MICROSOFT_APP_PASSWORD: _omit, ...env } = production;
    expect(loadSettings({ ...env, MICROSOFT_APP_TYPE: 'UserAssignedMSI' }).teams).toMatchObject({ appType: 'UserAssignedMSI', appPassword: undefined });
  });

  it('refuses Slack settings without SLACK_SIGNING_SECRET', () => {
    expect(problems({ ...production, SLACK_CLIENT_ID: 'c', SLACK_CLIENT_SECRET: 's', SLACK_STATE_SECRET: 't' })).toEqual([expect.stringMatching(/^SLACK_SIGNING_SECRET: required/)]);
  });

  it('refuses the embedded store', () => {
    expect(problems({ ...production, STORE: 'sqlite' })).toEqual([expect.stringMatching(/^STORE: must be cosmos in production/)]);
  });

  it('accepts TEAMS_ENABLED=false on Cosmos DB with no Bot Framework credentials', () => {
    const settings = loadSettings({ NODE_ENV: 'production', TEAMS_ENABLED: 'false', STORE: 'cosmos', COSMOS_ENDPOINT: production.COSMOS_ENDPOINT, SLACK_SIGNING_SECRET: 'sig', SLACK_BOT_TOKEN: 'xoxb-test' });
    expect(settings).toMatchObject({ production: true, teams: { enabled: false }, store: { kind: 'cosmos' } });
  });

  it('lists every production problem at once', () => {
    expect(problems({ NODE_ENV: 'production' }).map((line) => line.split(':')[0])).toEqual(['MICROSOFT_APP_ID', 'MICROSOFT_APP_PASSWORD', 'STORE']);
  });
});

describe('App Service Key Vault references that did not resolve', () => {
  const reference = '@Microsoft.KeyVault(VaultName=kv-abc123;SecretName=microsoft-app-password)';

  it('count as missing, with a line that says the reference did not resolve (and no second line for the same setting)', () => {
    const lines = problems({ ...production, MICROSOFT_APP_PASSWORD: reference });
    expect(lines).toEqual([expect.stringMatching(/^MICROSOFT_APP_PASSWORD: the Key Vault reference did not resolve \(App Service passed "@Microsoft\.KeyVault\(VaultName=kv-abc123;SecretName=microsoft-app-password\)" on as text\)/)]);
  });

  it('are refused for optional settings too, since a secret was meant to be there', () => {
    const lines = problems({ SLACK_SIGNING_SECRET: ' @microsoft.keyvault(SecretUri=https://kv-abc123.vault.azure.net/secrets/slack-signing-secret/)' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^SLACK_SIGNING_SECRET: the Key Vault reference did not resolve/);
  });

  it('are listed with the other bad settings, one line each', () => {
    const lines = problems({ PORT: 'abc', SLACK_BOT_TOKEN: '@Microsoft.KeyVault(VaultName=v;SecretName=slack-bot-token)' });
    expect(lines.map((line) => line.split(':')[0]).sort()).toEqual(['PORT', 'SLACK_BOT_TOKEN']);
  });
});

describe('telemetry and retention settings', () => {
  it('keeps the question log for a year by default', () => {
    expect(loadSettings({}).questionLogRetentionDays).toBe(365);
    expect(loadSettings({ QUESTION_LOG_RETENTION_DAYS: '400' }).questionLogRetentionDays).toBe(400);
    expect(loadSettings({}).outboxRetentionDays).toBe(30);
    expect(loadSettings({ OUTBOX_RETENTION_DAYS: '7' }).outboxRetentionDays).toBe(7);
    expect(problems({ QUESTION_LOG_RETENTION_DAYS: '0' })[0]).toMatch(/^QUESTION_LOG_RETENTION_DAYS: /);
  });

  it('reads the Application Insights connection string: key and ingestion endpoint', () => {
    expect(loadSettings({}).appInsights).toBeUndefined();
    const settings = loadSettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-4000-8000-0000000000ab;IngestionEndpoint=https://uksouth-1.in.applicationinsights.azure.com/;LiveEndpoint=https://uksouth.livediagnostics.monitor.azure.com/' });
    expect(settings.appInsights).toEqual({ instrumentationKey: '00000000-0000-4000-8000-0000000000ab', ingestionEndpoint: 'https://uksouth-1.in.applicationinsights.azure.com' });
    expect(loadSettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=k1' }).appInsights?.ingestionEndpoint).toBe('https://dc.services.visualstudio.com');
    const [line] = problems({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'IngestionEndpoint=https://x.example/' });
    expect(line).toMatch(/^APPLICATIONINSIGHTS_CONNECTION_STRING: expected "InstrumentationKey=/);
  });
});

describe('the command line with a bad setting', () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'esafety-config-'));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('`serve` with PORT=abc exits non-zero and says which setting is wrong on standard error', () => {
    const result = spawnSync(process.execPath, [path.join(repoRoot, 'bin/esafety-bot.mjs'), 'serve'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, PORT: 'abc', DATA_DIR: path.join(cwd, 'data') },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/cannot start/);
    expect(result.stderr).toMatch(/^\s*PORT: .+$/m);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
