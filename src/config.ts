/**
 * The only reader of the environment. Validates it with zod at start-up and hands typed settings
 * to the composition root; nothing else in src/ looks at process.env.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AppError } from './errors.ts';

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

const booleanFlag = <T extends boolean | undefined>(fallback: T) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return fallback;
      const normalised = value.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(normalised)) return true;
      if (['0', 'false', 'no', 'off'].includes(normalised)) return false;
      ctx.addIssue({ code: 'custom', message: `expected true or false, got "${value}"` });
      return z.NEVER;
    });

const urlString = z
  .string()
  .optional()
  .transform((value, ctx) => {
    if (value === undefined || value.trim() === '') return undefined;
    try {
      return new URL(value.trim()).toString();
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL: "${value}"` });
      return z.NEVER;
    }
  });

const environmentSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3978),
  HOST: z.string().default('0.0.0.0'),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().default('./data'),
  DEFAULT_SCHOOL: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and hyphens, at most 63 characters')
    .default('default'),
  DEFAULT_SCHOOL_NAME: z.string().default('Harbour Lane Academy'),
  POLICIES_DIR: z.string().default('./policies'),
  PUBLIC_URL: urlString,
  STORE: z.enum(['sqlite', 'cosmos']).default('sqlite'),
  COSMOS_ENDPOINT: urlString,
  COSMOS_KEY: optionalString,
  COSMOS_DATABASE: z.string().default('esafety'),
  COSMOS_CONTAINER: z.string().default('records'),
  MICROSOFT_APP_ID: optionalString,
  MICROSOFT_APP_PASSWORD: optionalString,
  MICROSOFT_APP_TYPE: z.enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI']).default('MultiTenant'),
  MICROSOFT_APP_TENANT_ID: optionalString,
  TEAMS_ENABLED: booleanFlag(true),
  SLACK_SIGNING_SECRET: optionalString,
  SLACK_BOT_TOKEN: optionalString,
  SLACK_CLIENT_ID: optionalString,
  SLACK_CLIENT_SECRET: optionalString,
  SLACK_STATE_SECRET: optionalString,
  SLACK_API_URL: urlString,
  ROLE_CACHE_SECONDS: z.coerce.number().int().min(0).max(60).default(30),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  LINK_SIGNING_SECRET: optionalString,
  INCIDENT_ESCALATE_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(15),
  INCIDENT_RETENTION_DAYS: z
    .string()
    .optional()
    .transform((value, ctx) => {
      // "nudes=9125,cyberbullying=1095,default=730": days per category, overriding the built-in policy.
      const out: Record<string, number> = {};
      for (const part of (value ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
        const match = /^([a-z-]+)=(\d{1,6})$/.exec(part);
        if (!match) {
          ctx.addIssue({ code: 'custom', message: `expected category=days pairs separated by commas, got "${part}"` });
          return z.NEVER;
        }
        out[match[1]!] = Number(match[2]);
      }
      return out;
    }),
  // Unset: on outside production, off in production.
  PLAYGROUND_ENABLED: booleanFlag(undefined),
  PLAYGROUND_PUBLIC: booleanFlag(false),
  QUESTION_LOG_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(365),
  OUTBOX_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  APPLICATIONINSIGHTS_CONNECTION_STRING: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return undefined;
      const parsed = parseAppInsightsConnectionString(value);
      if (typeof parsed === 'string') {
        ctx.addIssue({ code: 'custom', message: parsed });
        return z.NEVER;
      }
      return parsed;
    }),
});

/** Where Application Insights takes events: from its connection string ("InstrumentationKey=…;IngestionEndpoint=https://…/"). */
export interface AppInsightsTarget {
  instrumentationKey: string;
  /** Base URL of the ingestion service, without a trailing slash. */
  ingestionEndpoint: string;
}

/** The target, or a line saying what is wrong (never echoing the key). */
export function parseAppInsightsConnectionString(value: string): AppInsightsTarget | string {
  const fields = new Map<string, string>();
  for (const part of value.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const instrumentationKey = fields.get('instrumentationkey');
  if (!instrumentationKey) return 'expected "InstrumentationKey=…;IngestionEndpoint=https://…" (copy it from the Application Insights resource\'s overview)';
  // Without an IngestionEndpoint the classic global endpoint applies (old connection strings).
  const endpoint = fields.get('ingestionendpoint') ?? 'https://dc.services.visualstudio.com/';
  try {
    const url = new URL(endpoint);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http');
    return { instrumentationKey, ingestionEndpoint: url.toString().replace(/\/+$/, '') };
  } catch {
    return 'IngestionEndpoint is not a URL';
  }
}

/**
 * App Service replaces an app setting of the form @Microsoft.KeyVault(...) with the secret; when it
 * cannot (no such secret, the identity may not read it, the vault unreachable) the app receives the
 * reference itself as text. Using it as the value would fail later and obscurely.
 */
const KEY_VAULT_REFERENCE = /^@Microsoft\.KeyVault\(/i;

/** Every environment variable this module reads (the deployment templates are checked against it). */
export const environmentVariableNames = Object.keys(environmentSchema.shape) as Array<keyof Environment>;

export type Environment = z.infer<typeof environmentSchema>;

export interface Settings {
  port: number;
  host: string;
  nodeEnv: Environment['NODE_ENV'];
  production: boolean;
  logLevel: Environment['LOG_LEVEL'];
  dataDir: string;
  defaultSchool: { id: string; name: string };
  policiesDir: string;
  publicUrl: string;
  store:
    | { kind: 'sqlite'; file: string }
    | { kind: 'cosmos'; endpoint: string; key?: string; database: string; container: string };
  teams: {
    enabled: boolean;
    appId?: string;
    appPassword?: string;
    appType: Environment['MICROSOFT_APP_TYPE'];
    tenantId?: string;
  };
  slack?: {
    signingSecret: string;
    botToken?: string;
    clientId?: string;
    clientSecret?: string;
    stateSecret?: string;
    apiUrl?: string;
  };
  /** How long a user's roles may be cached; a revoked role stops working everywhere within this. */
  roleCacheSeconds: number;
  rateLimitPerMinute: number;
  /**
   * The browser playground (GET /, a loopback Direct Line bridge). Answers only requests from this
   * machine unless `public`; HOST still decides which interfaces the whole server listens on.
   */
  playground: { enabled: boolean; public: boolean };
  /** Signs "Read the policy" links; when absent one is generated and kept in the store. */
  linkSigningSecret?: string;
  incidents: {
    escalateAfterMinutes: number;
    /** Days per category (and `default`) overriding the built-in retention policy. */
    retentionOverrides: Record<string, number>;
  };
  /** Days questions and coordinator escalations are kept before the nightly sweep deletes them. */
  questionLogRetentionDays: number;
  /** Days a finished broadcast keeps its messages and recipients before the nightly sweep removes them (counts stay). */
  outboxRetentionDays: number;
  /** Application Insights, when its connection string is set: the bot's own events go there. */
  appInsights?: AppInsightsTarget;
}

/** Reads a local .env file into the given environment, without overriding what is set already. */
export function loadDotEnv(file = '.env', env: NodeJS.ProcessEnv = process.env): void {
  if (!existsSync(file)) return;
  const before = { ...env };
  process.loadEnvFile(file);
  Object.assign(env, before);
}

/** Validates the environment; throws AppError('config_invalid') listing one line per bad setting. */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  // An empty value (`PORT=` in a .env file) means unset, for every variable: without this, PORT=
  // would coerce to 0 (a random port) and STORE= would be refused as an unknown store.
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''));
  // An unresolved Key Vault reference counts as missing, and its own line says why.
  const unresolved = environmentVariableNames.filter((name) => KEY_VAULT_REFERENCE.test(given[name]?.trim() ?? ''));
  const keyVaultLines = unresolved.map(
    (name) => `${name}: the Key Vault reference did not resolve (App Service passed "${given[name]!.trim()}" on as text): check that the secret exists and that the web app's identity may read it (Key Vault Secrets User)`,
  );
  for (const name of unresolved) delete given[name];
  const notAboutUnresolved = (line: string) => !unresolved.some((name) => line.startsWith(`${name}:`));
  const parsed = environmentSchema.safeParse(given);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`);
    throw new AppError('config_invalid', [...keyVaultLines, ...lines.filter(notAboutUnresolved)].join('\n'));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const production = e.NODE_ENV === 'production';
  const slackConfigured = [e.SLACK_BOT_TOKEN, e.SLACK_CLIENT_ID, e.SLACK_CLIENT_SECRET, e.SLACK_STATE_SECRET].some(Boolean);

  if (e.STORE === 'cosmos' && !e.COSMOS_ENDPOINT) problems.push('COSMOS_ENDPOINT: required when STORE=cosmos');
  if (slackConfigured && !e.SLACK_SIGNING_SECRET) {
    problems.push('SLACK_SIGNING_SECRET: required when other SLACK_ settings are present (Slack requests cannot be verified without it)');
  }
  if (e.SLACK_CLIENT_ID && !e.SLACK_CLIENT_SECRET) problems.push('SLACK_CLIENT_SECRET: required with SLACK_CLIENT_ID');
  if (e.SLACK_CLIENT_ID && !e.SLACK_STATE_SECRET) problems.push('SLACK_STATE_SECRET: required with SLACK_CLIENT_ID');
  if (e.MICROSOFT_APP_TYPE === 'SingleTenant' && e.MICROSOFT_APP_ID && !e.MICROSOFT_APP_TENANT_ID) {
    problems.push('MICROSOFT_APP_TENANT_ID: required when MICROSOFT_APP_TYPE=SingleTenant');
  }
  if (production) {
    if (e.TEAMS_ENABLED && !e.MICROSOFT_APP_ID) problems.push('MICROSOFT_APP_ID: required in production (or set TEAMS_ENABLED=false)');
    if (e.TEAMS_ENABLED && e.MICROSOFT_APP_TYPE !== 'UserAssignedMSI' && !e.MICROSOFT_APP_PASSWORD) {
      problems.push('MICROSOFT_APP_PASSWORD: required in production for MICROSOFT_APP_TYPE=' + e.MICROSOFT_APP_TYPE);
    }
    if (e.STORE !== 'cosmos') problems.push('STORE: must be cosmos in production (the embedded SQLite store is for local use)');
  }
  if (keyVaultLines.length + problems.length > 0) throw new AppError('config_invalid', [...keyVaultLines, ...problems.filter(notAboutUnresolved)].join('\n'));

  const port = e.PORT;
  return {
    port,
    host: e.HOST,
    nodeEnv: e.NODE_ENV,
    production,
    logLevel: e.LOG_LEVEL,
    dataDir: path.resolve(e.DATA_DIR),
    defaultSchool: { id: e.DEFAULT_SCHOOL, name: e.DEFAULT_SCHOOL_NAME },
    policiesDir: path.resolve(e.POLICIES_DIR),
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${port}/`).replace(/\/$/, ''),
    store:
      e.STORE === 'cosmos'
        ? { kind: 'cosmos', endpoint: e.COSMOS_ENDPOINT!, key: e.COSMOS_KEY, database: e.COSMOS_DATABASE, container: e.COSMOS_CONTAINER }
        : { kind: 'sqlite', file: path.join(path.resolve(e.DATA_DIR), 'esafety.sqlite') },
    teams: {
      enabled: e.TEAMS_ENABLED,
      appId: e.MICROSOFT_APP_ID,
      appPassword: e.MICROSOFT_APP_PASSWORD,
      appType: e.MICROSOFT_APP_TYPE,
      tenantId: e.MICROSOFT_APP_TENANT_ID,
    },
    slack: e.SLACK_SIGNING_SECRET
      ? {
          signingSecret: e.SLACK_SIGNING_SECRET,
          botToken: e.SLACK_BOT_TOKEN,
          clientId: e.SLACK_CLIENT_ID,
          clientSecret: e.SLACK_CLIENT_SECRET,
          stateSecret: e.SLACK_STATE_SECRET,
          apiUrl: e.SLACK_API_URL,
        }
      : undefined,
    roleCacheSeconds: e.ROLE_CACHE_SECONDS,
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    playground: { enabled: e.PLAYGROUND_ENABLED ?? !production, public: e.PLAYGROUND_PUBLIC },
    linkSigningSecret: e.LINK_SIGNING_SECRET,
    incidents: { escalateAfterMinutes: e.INCIDENT_ESCALATE_MINUTES, retentionOverrides: e.INCIDENT_RETENTION_DAYS },
    questionLogRetentionDays: e.QUESTION_LOG_RETENTION_DAYS,
    outboxRetentionDays: e.OUTBOX_RETENTION_DAYS,
    appInsights: e.APPLICATIONINSIGHTS_CONNECTION_STRING,
  };
}
