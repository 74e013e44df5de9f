/**
 * infra/azuredeploy.json, checked without Azure: valid JSON, every expression parses, every
 * parameter and variable is used, resources depend on what they refer to, secrets only reach Key
 * Vault, Cosmos DB is reached with the web app's managed identity, and the app settings are
 * exactly the settings src/config.ts reads (less the local-only ones), and load through it.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { environmentVariableNames as configNames, loadSettings } from '../../src/config.ts';
import { calls, isArmFunction, isExpression, parseExpression, type Expr } from './arm-expressions.ts';
import { appSettingsOf, evaluateTemplate, infraDir, isRuntime, loadParametersFile, loadTemplate, readJson, resourcesOfType, strings, type Evaluation } from './arm-template.ts';

/** Every environment variable src/config.ts reads. */
const environmentVariableNames: string[] = [...configNames];
const template = loadTemplate();
const parametersFile = loadParametersFile();
const settingsDoc = readJson<{ localOnly: Record<string, string>; platform: Record<string, string> }>('settings.json');
const readme = readFileSync(`${infraDir}README.md`, 'utf8');

/** Every expression in the template with where it is. */
const expressions = strings(template as never).filter((s) => isExpression(s.value));

/** Values Azure would supply at deployment, for loading the settings through src/config.ts. */
const CLIENT_ID = 'c1d2e3f4-0000-4000-8000-00000000c11d';
function azure(evaluationRef: { current?: Evaluation }) {
  return (target: string, path: string[]): unknown => {
    const evaluation = evaluationRef.current;
    if (!evaluation) return undefined;
    const resource = evaluation.resources.find((r) => r.id.toLowerCase() === target.toLowerCase());
    if (!resource) return undefined;
    const key = `${resource.type}:${path.join('.')}`;
    switch (key) {
      case 'Microsoft.Web/sites:defaultHostName':
        return `${resource.name}.azurewebsites.net`;
      case 'Microsoft.Web/sites:(full).identity.principalId':
        return '5a5a5a5a-0000-4000-8000-00000000517e';
      case 'Microsoft.DocumentDB/databaseAccounts:documentEndpoint':
        return `https://${resource.name}.documents.azure.com:443/`;
      case 'Microsoft.ManagedIdentity/userAssignedIdentities:clientId':
        return CLIENT_ID;
      case 'Microsoft.Insights/components:ConnectionString':
        return 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://uksouth-1.in.applicationinsights.azure.com/';
      default:
        return undefined;
    }
  };
}

function evaluateWith(values: Record<string, unknown>, resolved = false): Evaluation {
  const ref: { current?: Evaluation } = {};
  const fileValues = Object.fromEntries(Object.entries(parametersFile.parameters).map(([k, v]) => [k, v.value]));
  ref.current = evaluateTemplate(template, { ...fileValues, ...values }, resolved ? azure(ref) : undefined);
  // Runtime values refer to resources by id, known only after a first pass: evaluate again with them.
  if (resolved) ref.current = evaluateTemplate(template, { ...fileValues, ...values }, azure(ref));
  return ref.current;
}

const secrets = {
  microsoftAppPassword: 'SENTINEL-app-password',
  slackSigningSecret: 'SENTINEL-signing-secret',
  slackBotToken: 'SENTINEL-xoxb-token',
  slackClientSecret: 'SENTINEL-client-secret',
  slackStateSecret: 'SENTINEL-state-secret',
};
const APP_ID = '0b7e6c1d-2a3f-4b5c-8d9e-1f2a3b4c5d6e';
const scenarios: Array<[string, Record<string, unknown>]> = [
  ['the parameters file (managed identity, Teams only)', {}],
  ['a single-tenant app registration with every Slack secret', { microsoftAppType: 'SingleTenant', microsoftAppId: APP_ID, slackClientId: '1234.5678', ...secrets }],
  ['an existing multi-tenant app registration', { microsoftAppType: 'MultiTenant', microsoftAppId: APP_ID, microsoftAppPassword: secrets.microsoftAppPassword }],
];

/**
 * The environment App Service gives the app: each Key Vault reference replaced by the secret the
 * template put in the vault (or left as the literal reference, as App Service does when it cannot
 * resolve one).
 */
function environmentOf(evaluation: Evaluation): Record<string, string> {
  const settings = appSettingsOf(evaluation);
  const vaultSecrets = new Map(resourcesOfType(evaluation, 'Microsoft.KeyVault/vaults/secrets').filter((r) => r.deployed).map((r) => [r.name, (r.body.properties as { value: string }).value]));
  return Object.fromEntries(
    Object.entries(settings).map(([name, value]) => {
      if (isRuntime(value)) throw new Error(`${name}: ${value.description} has no stand-in value in this test`);
      const reference = /^@Microsoft\.KeyVault\(VaultName=([^;]+);SecretName=([^)]+)\)$/.exec(String(value));
      return [name, reference ? vaultSecrets.get(`${reference[1]}/${reference[2]}`) ?? String(value) : String(value)];
    }),
  );
}

describe('the files', () => {
  it('are JSON with the deployment schemas', () => {
    expect(template.$schema).toBe('https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#');
    expect(parametersFile.$schema).toBe('https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#');
    expect(template.contentVersion).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('the parameters file sets only declared parameters, never a secret, and every parameter without a default', () => {
    const declared = Object.keys(template.parameters);
    expect(Object.keys(parametersFile.parameters).filter((name) => !declared.includes(name))).toEqual([]);
    const secure = declared.filter((name) => template.parameters[name]!.type.toLowerCase() === 'securestring');
    expect(Object.keys(parametersFile.parameters).filter((name) => secure.includes(name))).toEqual([]);
    const required = declared.filter((name) => template.parameters[name]!.defaultValue === undefined);
    expect(required.filter((name) => !(name in parametersFile.parameters))).toEqual([]);
  });

  it('every parameter is described for the portal', () => {
    expect(Object.entries(template.parameters).filter(([, p]) => !p.metadata?.description).map(([name]) => name)).toEqual([]);
  });
});

describe('expressions', () => {
  it('every one parses (a failure names its place in the template)', () => {
    expect(expressions.length).toBeGreaterThan(80);
    const failures: string[] = [];
    for (const { value, path } of expressions) {
      try {
        parseExpression(value);
      } catch (error) {
        failures.push(`${path}: ${(error as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('every function called is an ARM template function', () => {
    const unknown = expressions.flatMap(({ value, path }) => calls(parseExpression(value)).filter(({ call }) => !call.namespace && !isArmFunction(call.name)).map(({ call }) => `${path}: ${call.name}()`));
    expect(unknown).toEqual([]);
  });

  const referenced = (fn: 'parameters' | 'variables') =>
    new Set(expressions.flatMap(({ value }) => calls(parseExpression(value)).filter(({ call }) => call.name.toLowerCase() === fn).map(({ call }) => (call.args[0] as Extract<Expr, { type: 'string' }>).value)));

  it('every parameter is used, and every parameters() names a declared one', () => {
    const used = referenced('parameters');
    const declared = Object.keys(template.parameters);
    expect(declared.filter((name) => !used.has(name))).toEqual([]);
    expect([...used].filter((name) => !declared.includes(name))).toEqual([]);
  });

  it('every variable is used, and every variables() names a declared one', () => {
    const used = referenced('variables');
    const declared = Object.keys(template.variables);
    expect(declared.filter((name) => !used.has(name))).toEqual([]);
    expect([...used].filter((name) => !declared.includes(name))).toEqual([]);
  });

  it('parameters() and variables() take a literal name (so the checks above see every use)', () => {
    const dynamic = expressions.flatMap(({ value, path }) =>
      calls(parseExpression(value))
        .filter(({ call }) => ['parameters', 'variables'].includes(call.name.toLowerCase()) && call.args[0]?.type !== 'string')
        .map(({ call }) => `${path}: ${call.name}()`),
    );
    expect(dynamic).toEqual([]);
  });
});

describe.each(scenarios)('deployed with %s', (_name, values) => {
  // Evaluated in beforeAll, not while collecting: a template that does not evaluate then fails these
  // tests, while the parse test above still names the bad expression.
  let evaluation: Evaluation;
  let ids: Set<string>;
  beforeAll(() => {
    evaluation = evaluateWith(values);
    ids = new Set(evaluation.resources.map((r) => r.id.toLowerCase()));
  });

  it('every resource depends on each resource of the template it refers to (resourceId, reference, scope, parent)', () => {
    const missing = evaluation.resources.flatMap((resource) =>
      resource.references.filter((id) => ids.has(id) && !resource.dependsOn.includes(id)).map((id) => `${resource.label} refers to ${evaluation.resources.find((r) => r.id.toLowerCase() === id)!.label} without a dependsOn`),
    );
    expect(missing).toEqual([]);
  });

  it('every dependsOn names a resource of the template', () => {
    const dangling = evaluation.resources.flatMap((resource) => resource.dependsOn.filter((id) => !ids.has(id)).map((id) => `${resource.label}: dependsOn ${id}`));
    expect(dangling).toEqual([]);
  });

  it('resource names are unique and within Azure limits', () => {
    expect(ids.size).toBe(evaluation.resources.length);
    const site = resourcesOfType(evaluation, 'Microsoft.Web/sites')[0]!;
    const cosmos = resourcesOfType(evaluation, 'Microsoft.DocumentDB/databaseAccounts')[0]!;
    const vault = resourcesOfType(evaluation, 'Microsoft.KeyVault/vaults')[0]!;
    expect(site.name).toMatch(/^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$/);
    expect(cosmos.name).toMatch(/^[a-z0-9][a-z0-9-]{1,42}[a-z0-9]$/);
    expect(vault.name).toMatch(/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/);
  });

  it("writes exactly the settings src/config.ts reads, less the local-only ones, plus App Service's own", () => {
    const written = Object.keys(appSettingsOf(evaluation));
    const expected = environmentVariableNames.filter((name) => !(name in settingsDoc.localOnly));
    const missing = expected.filter((name) => !written.includes(name));
    const unknown = written.filter((name) => !expected.includes(name) && !(name in settingsDoc.platform));
    expect({ missing, unknown }).toEqual({ missing: [], unknown: [] });
  });

  it('secret values reach only Key Vault: app settings hold Key Vault references, nothing else holds a secret', () => {
    const sentinels = Object.values(secrets).filter((s) => Object.values(values).includes(s));
    const elsewhere = evaluation.resources
      .filter((r) => r.type !== 'Microsoft.KeyVault/vaults/secrets')
      .flatMap((r) => sentinels.filter((s) => JSON.stringify(r.body).includes(s)).map((s) => `${r.label} holds ${s}`));
    const inOutputs = sentinels.filter((s) => JSON.stringify(evaluation.outputs).includes(s));
    expect([...elsewhere, ...inOutputs]).toEqual([]);
    const settings = appSettingsOf(evaluation);
    for (const name of ['MICROSOFT_APP_PASSWORD', 'SLACK_SIGNING_SECRET', 'SLACK_BOT_TOKEN', 'SLACK_CLIENT_SECRET', 'SLACK_STATE_SECRET']) {
      expect(String(settings[name]), name).toMatch(/^(|@Microsoft\.KeyVault\(VaultName=kv-[a-z0-9]+;SecretName=[a-z-]+\))$/);
    }
  });

  it('every Key Vault reference names a secret the template creates in this deployment', () => {
    const vaultSecrets = new Set(resourcesOfType(evaluation, 'Microsoft.KeyVault/vaults/secrets').filter((r) => r.deployed).map((r) => r.name));
    const dangling = Object.entries(appSettingsOf(evaluation)).flatMap(([name, value]) => {
      const reference = /^@Microsoft\.KeyVault\(VaultName=([^;]+);SecretName=([^)]+)\)$/.exec(String(value));
      return reference && !vaultSecrets.has(`${reference[1]}/${reference[2]}`) ? [`${name}: ${String(value)}`] : [];
    });
    expect(dangling).toEqual([]);
  });

  it('the settings, as App Service hands them to the app, load through src/config.ts in production', () => {
    const environment = environmentOf(evaluateWith(values, true));
    const settings = loadSettings(environment);
    expect(settings).toMatchObject({ production: true, store: { kind: 'cosmos', database: 'esafety', container: 'records' } });
    expect(settings.store.kind === 'cosmos' && settings.store.key).toBeUndefined();
    expect(settings.publicUrl).toMatch(/^https:\/\/[a-z0-9-]+\.azurewebsites\.net$/);
    expect(settings.teams.appType).toBe(values.microsoftAppType ?? 'UserAssignedMSI');
    expect(settings.teams.appId).toBe(values.microsoftAppId ?? CLIENT_ID);
    expect(settings.teams.appPassword).toBe(values.microsoftAppType && values.microsoftAppType !== 'UserAssignedMSI' ? secrets.microsoftAppPassword : undefined);
    expect(settings.playground.enabled).toBe(false);
    // The bot's own events reach the Application Insights resource the template creates.
    expect(settings.appInsights).toEqual({ instrumentationKey: '00000000-0000-0000-0000-000000000000', ingestionEndpoint: 'https://uksouth-1.in.applicationinsights.azure.com' });
    expect(settings.questionLogRetentionDays).toBe(365);
    if (values.slackSigningSecret) expect(settings.slack).toMatchObject({ signingSecret: secrets.slackSigningSecret, botToken: secrets.slackBotToken, clientSecret: secrets.slackClientSecret, stateSecret: secrets.slackStateSecret, clientId: '1234.5678' });
    else expect(settings.slack).toBeUndefined();
  });
});

describe('what the template creates', () => {
  let evaluation: Evaluation;
  beforeAll(() => {
    evaluation = evaluateWith({});
  });
  const one = (type: string) => {
    const found = resourcesOfType(evaluation, type);
    expect(found, type).toHaveLength(1);
    return found[0]!;
  };
  const site = () => one('Microsoft.Web/sites');
  const principalOfSite = (value: unknown) => isRuntime(value) && value.target?.toLowerCase() === site().id.toLowerCase() && value.path.join('.') === '(full).identity.principalId';

  it('a Linux App Service on Node 20 that runs npm start, checks /healthz and takes HTTPS only', () => {
    const body = site().body as any;
    expect(one('Microsoft.Web/serverfarms').body).toMatchObject({ kind: 'linux', properties: { reserved: true } });
    expect(body.kind).toBe('app,linux');
    expect(body.properties).toMatchObject({ httpsOnly: true, siteConfig: { linuxFxVersion: 'NODE|20-lts', appCommandLine: 'npm start', healthCheckPath: '/healthz', minTlsVersion: '1.2', ftpsState: 'Disabled', alwaysOn: true } });
    expect(body.identity.type).toBe('SystemAssigned, UserAssigned');
  });

  it('serverless Cosmos DB that refuses keys, with the database and the records container partitioned by /school as the store expects', () => {
    const account = one('Microsoft.DocumentDB/databaseAccounts').body as any;
    expect(account.properties.capabilities).toEqual([{ name: 'EnableServerless' }]);
    expect(account.properties.disableLocalAuth).toBe(true);
    const settings = appSettingsOf(evaluation);
    expect((one('Microsoft.DocumentDB/databaseAccounts/sqlDatabases').body as any).properties.resource.id).toBe(settings.COSMOS_DATABASE);
    const container = (one('Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers').body as any).properties.resource;
    expect(container.id).toBe(settings.COSMOS_CONTAINER);
    expect(container.partitionKey.paths).toEqual(['/school']);
    // The store creates the container with the same key when it is missing (only possible with a key).
    expect(readFileSync(new URL('../../src/store/cosmos/cosmos-store.ts', import.meta.url), 'utf8')).toContain("partitionKey: { paths: ['/school'] }");
    expect(readFileSync(new URL('../../docs/data-model.md', import.meta.url), 'utf8')).toMatch(/partition key path\s+`\/school`/);
  });

  it("gives the web app's own identity Cosmos DB Built-in Data Contributor on the database, and nothing gives it a key", () => {
    const assignment = one('Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments').body as any;
    expect(String(assignment.properties.roleDefinitionId)).toMatch(/\/sqlRoleDefinitions\/00000000-0000-0000-0000-000000000002$/);
    expect(principalOfSite(assignment.properties.principalId)).toBe(true);
    expect(String(assignment.properties.scope)).toMatch(/\/databaseAccounts\/[a-z0-9-]+\/dbs\/esafety$/);
    expect(JSON.stringify(evaluation.resources.map((r) => r.body))).not.toMatch(/listKeys|COSMOS_KEY/);
    expect(appSettingsOf(evaluation)).not.toHaveProperty('COSMOS_KEY');
  });

  it('keeps secrets in an RBAC Key Vault that only the web app identity reads (Key Vault Secrets User)', () => {
    expect((one('Microsoft.KeyVault/vaults').body as any).properties).toMatchObject({ enableRbacAuthorization: true, enableSoftDelete: true });
    const assignment = one('Microsoft.Authorization/roleAssignments');
    expect(String((assignment.body as any).properties.roleDefinitionId)).toMatch(/\/roleDefinitions\/4633458b-17de-408a-b874-0445c86b69e6$/);
    expect(principalOfSite((assignment.body as any).properties.principalId)).toBe(true);
    expect(assignment.id.toLowerCase().startsWith(one('Microsoft.KeyVault/vaults').id.toLowerCase())).toBe(true);
    expect((site().body as any).properties.keyVaultReferenceIdentity).toBe('SystemAssigned');
  });

  it('registers the bot with the Teams channel, its messaging endpoint on the web app, its identity the managed identity', () => {
    const bot = one('Microsoft.BotService/botServices').body as any;
    expect(bot.kind).toBe('azurebot');
    expect(String(bot.properties.endpoint)).toMatch(/^<https:\/\/<reference\(\/subscriptions\/.*\/providers\/Microsoft\.Web\/sites\/[a-z0-9-]+\)\.defaultHostName>\/api\/messages>$/);
    expect(bot.properties.msaAppType).toBe('UserAssignedMSI');
    expect(String(bot.properties.msaAppMSIResourceId)).toBe(one('Microsoft.ManagedIdentity/userAssignedIdentities').id);
    const channel = one('Microsoft.BotService/botServices/channels').body as any;
    expect(channel.properties).toMatchObject({ channelName: 'MsTeamsChannel', properties: { isEnabled: true } });
    const resolved = evaluateWith({}, true);
    expect((resourcesOfType(resolved, 'Microsoft.BotService/botServices')[0]!.body as any).properties.endpoint).toBe(`https://${site().name}.azurewebsites.net/api/messages`);
  });

  it('sends the console (pino) logs to Log Analytics and connects Application Insights', () => {
    const diagnostics = one('Microsoft.Insights/diagnosticSettings');
    expect(diagnostics.id.toLowerCase().startsWith(site().id.toLowerCase())).toBe(true);
    expect((diagnostics.body as any).properties.logs.map((l: { category: string }) => l.category)).toContain('AppServiceConsoleLogs');
    expect(one('Microsoft.Insights/components').body).toMatchObject({ properties: { Application_Type: 'web' } });
    expect(appSettingsOf(evaluateWith({}, true)).APPLICATIONINSIGHTS_CONNECTION_STRING).toMatch(/^InstrumentationKey=/);
  });

  it('deploys code from a repository only when one is given', () => {
    expect(one('Microsoft.Web/sites/sourcecontrols').deployed).toBe(false);
    expect(resourcesOfType(evaluateWith({ repositoryUrl: 'https://github.com/example/esafety-bot' }), 'Microsoft.Web/sites/sourcecontrols')[0]!.deployed).toBe(true);
  });

  it('outputs the app id and messaging endpoint the Teams package and the admin need', () => {
    expect(Object.keys(evaluation.outputs)).toEqual(expect.arrayContaining(['webAppUrl', 'messagingEndpoint', 'microsoftAppId', 'keyVaultName']));
    expect(evaluateWith({}, true).outputs.microsoftAppId).toBe(CLIENT_ID);
  });
});

describe('the settings documentation', () => {
  it('infra/settings.json names only settings that exist, and none both local-only and platform', () => {
    expect(Object.keys(settingsDoc.localOnly).filter((name) => !environmentVariableNames.includes(name))).toEqual([]);
    expect(Object.keys(settingsDoc.platform).filter((name) => environmentVariableNames.includes(name))).toEqual([]);
  });

  it('infra/README.md explains every local-only and platform setting', () => {
    const missing = [...Object.keys(settingsDoc.localOnly), ...Object.keys(settingsDoc.platform)].filter((name) => !readme.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('a setting added to src/config.ts and not to the template is reported by name', () => {
    const written = Object.keys(appSettingsOf(evaluateWith({})));
    const pretend = [...environmentVariableNames, 'OUTBOX_CONCURRENCY'];
    expect(pretend.filter((name) => !(name in settingsDoc.localOnly) && !written.includes(name))).toEqual(['OUTBOX_CONCURRENCY']);
  });
});
