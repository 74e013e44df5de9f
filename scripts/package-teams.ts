/**
 * `npm run package:teams`: builds the Teams app package (dist/teams-app.zip) to upload in the Teams
 * admin centre, from the template in manifest/teams/.
 *
 *   npm run package:teams                         ids from the configuration (.env or the environment)
 *   npm run package:teams -- --app-id GUID --public-url https://bot.example.org [--out FILE]
 *       [--version 1.2.3] [--website-url URL] [--privacy-url URL] [--terms-url URL]
 *
 * The app id and the bot's address come from the flags, or else from the configuration through
 * src/config.ts (MICROSOFT_APP_ID, PUBLIC_URL): this script never reads the environment itself.
 * It fills the template, validates it against the official Teams manifest schema shipped in
 * @microsoft/app-manifest, checks the icons (sizes, the outline's transparency), writes the zip, then
 * opens the zip again and checks what is in it. Every problem names the field (`bots[0].botId`) or
 * file it is about; the command exits 1 listing them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Ajv04 from 'ajv-draft-04';
import type { ErrorObject, ValidateFunction } from 'ajv-draft-04';
import addFormatsImport from 'ajv-formats';
import JSZip from 'jszip';
import { PNG } from 'pngjs';
import { isAppError } from '../src/errors.ts';
import { loadDotEnv, loadSettings } from '../src/config.ts';
import { manifestDir } from './package-teams.icons.ts';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const defaultOutput = path.join(repoRoot, 'dist', 'teams-app.zip');

/** What Teams requires of the two icons. */
export const ICON_RULES = {
  color: { width: 192, height: 192 },
  outline: { width: 32, height: 32 },
} as const;

/** The files in the package, all at the root of the zip (Teams refuses folders). */
const MANIFEST_FILE = 'manifest.json';

export class PackageError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'PackageError';
    this.problems = problems;
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `bots[0].botId` from a path of keys; `(manifest)` for the root. */
export function jsonPath(segments: Array<string | number>): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out || '(manifest)';
}

/** An Ajv instancePath (`/bots/0/botId`) as path segments. */
function pointerSegments(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

// ---------------------------------------------------------------------------------------------
// The template

export interface ManifestValues {
  MICROSOFT_APP_ID: string;
  BOT_DOMAIN: string;
  APP_VERSION: string;
  WEBSITE_URL: string;
  PRIVACY_URL: string;
  TERMS_URL: string;
}

export function readTemplate(dir = manifestDir): Json {
  return JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Json;
}

/**
 * Replaces every `{{NAME}}` in the template's string values. A placeholder with no value, or one
 * left over, is a problem named by its field's path.
 */
export function fillTemplate(template: Json, values: Partial<Record<string, string>>): Json {
  const problems: string[] = [];
  const walk = (node: Json, at: Array<string | number>): Json => {
    if (typeof node === 'string') {
      return node.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (whole, name: string) => {
        const value = values[name];
        if (value === undefined) {
          problems.push(`${jsonPath(at)}: no value for the placeholder {{${name}}}`);
          return whole;
        }
        return value;
      });
    }
    if (Array.isArray(node)) return node.map((child, i) => walk(child, [...at, i]));
    if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, walk(child, [...at, key])]));
    return node;
  };
  const filled = walk(template, []);
  if (problems.length) throw new PackageError(problems);
  return filled;
}

// ---------------------------------------------------------------------------------------------
// The schema

const require = createRequire(import.meta.url);
// Both packages are CommonJS whose module.exports is also their default export: under NodeNext the
// default import is module.exports, typed as the namespace. Take `.default` when present.
type AjvClass = typeof Ajv04.default;
const Ajv: AjvClass = (Ajv04 as unknown as { default?: AjvClass }).default ?? (Ajv04 as unknown as AjvClass);
type AddFormats = (ajv: InstanceType<AjvClass>) => unknown;
const addFormats: AddFormats = (addFormatsImport as unknown as { default?: AddFormats }).default ?? (addFormatsImport as unknown as AddFormats);

/** The official schema file for a manifest version, from @microsoft/app-manifest (offline). */
export function manifestSchemaPath(manifestVersion: string): string {
  const packageDir = path.dirname(require.resolve('@microsoft/app-manifest/package.json'));
  return path.join(packageDir, 'build', 'json-schemas', 'teams', `v${manifestVersion}`, 'MicrosoftTeams.schema.json');
}

const validators = new Map<string, ValidateFunction>();

function validatorFor(manifestVersion: string): ValidateFunction {
  const cached = validators.get(manifestVersion);
  if (cached) return cached;
  const file = manifestSchemaPath(manifestVersion);
  if (!existsSync(file)) throw new PackageError([`manifestVersion: no official schema for version "${manifestVersion}" in @microsoft/app-manifest (looked for ${file})`]);
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validate = ajv.compile(JSON.parse(readFileSync(file, 'utf8')));
  validators.set(manifestVersion, validate);
  return validate;
}

function describeSchemaError(error: ErrorObject): string {
  const at = pointerSegments(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${jsonPath([...at, String(params.missingProperty)])}: is required`;
    case 'additionalProperties':
      return `${jsonPath([...at, String(params.additionalProperty)])}: is not allowed here (not in the schema)`;
    case 'enum':
      return `${jsonPath(at)}: ${error.message} (${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')})`;
    default:
      return `${jsonPath(at)}: ${error.message}`;
  }
}

/**
 * Problems with a filled manifest: against the official schema of its manifestVersion, then the
 * checks Teams makes on upload that a schema cannot express.
 */
export function validateManifest(manifest: unknown): string[] {
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) return ['(manifest): must be a JSON object'];
  const m = manifest as Record<string, unknown>;
  if (typeof m.manifestVersion !== 'string') return ['manifestVersion: is required (a string such as "1.30")'];
  const validate = validatorFor(m.manifestVersion);
  const problems = validate(manifest) ? [] : [...new Set((validate.errors ?? []).map(describeSchemaError))];

  const leftovers: string[] = [];
  const findPlaceholders = (node: unknown, at: Array<string | number>): void => {
    if (typeof node === 'string' && /\{\{.*?\}\}/.test(node)) leftovers.push(`${jsonPath(at)}: placeholder not filled (${node})`);
    else if (Array.isArray(node)) node.forEach((child, i) => findPlaceholders(child, [...at, i]));
    else if (node && typeof node === 'object') for (const [key, child] of Object.entries(node)) findPlaceholders(child, [...at, key]);
  };
  findPlaceholders(manifest, []);
  problems.push(...leftovers);

  const domains = Array.isArray(m.validDomains) ? m.validDomains : [];
  domains.forEach((domain, i) => {
    if (typeof domain === 'string' && !/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d+)?$/i.test(domain)) {
      problems.push(`validDomains[${i}]: "${domain}" must be a host name only (no scheme, path or spaces)`);
    }
  });
  const bots = Array.isArray(m.bots) ? (m.bots as Array<Record<string, unknown>>) : [];
  bots.forEach((bot, i) => {
    if (bot && typeof bot === 'object' && bot.supportsFiles === true) {
      // The bot must never receive images (a nude shared with a member of staff must not be forwarded).
      problems.push(`bots[${i}].supportsFiles: must be false: the bot never accepts files`);
    }
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The icons

/** Problems with one icon: a readable PNG of the right size; the outline white on transparent. */
export function checkIcon(kind: keyof typeof ICON_RULES, bytes: Buffer, name: string): string[] {
  const field = `icons.${kind} (${name})`;
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (error) {
    return [`${field}: not a readable PNG (${(error as Error).message})`];
  }
  const rule = ICON_RULES[kind];
  const problems: string[] = [];
  if (png.width !== rule.width || png.height !== rule.height) {
    problems.push(`${field}: must be ${rule.width}x${rule.height} pixels, is ${png.width}x${png.height}`);
  }
  if (kind === 'outline') {
    let transparent = 0;
    let notWhite: { x: number; y: number; rgba: number[] } | undefined;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b, a] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!, png.data[i + 3]!];
      if (a === 0) transparent++;
      else if ((r !== 255 || g !== 255 || b !== 255) && !notWhite) notWhite = { x: (i / 4) % png.width, y: Math.floor(i / 4 / png.width), rgba: [r, g, b, a] };
    }
    if (transparent === 0) problems.push(`${field}: must have a transparent background (no pixel is transparent)`);
    if (notWhite) problems.push(`${field}: every visible pixel must be white; pixel (${notWhite.x}, ${notWhite.y}) is rgba(${notWhite.rgba.join(', ')})`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The package

export interface PackageOptions {
  appId: string;
  publicUrl: string;
  version: string;
  websiteUrl?: string;
  privacyUrl?: string;
  termsUrl?: string;
  /** The zip to write. */
  out: string;
  /** Folder holding manifest.json and the icons (manifest/teams by default). */
  templateDir?: string;
}

const GUID = /^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/;

/** The values for the template, or the problems with the ids and addresses given. */
export function manifestValues(options: PackageOptions): { values: ManifestValues; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!options.appId) problems.push('MICROSOFT_APP_ID: required (the Azure Bot\'s Microsoft App ID); set it in the configuration or pass --app-id');
  else if (!GUID.test(options.appId)) problems.push(`MICROSOFT_APP_ID: "${options.appId}" is not a GUID (the Azure Bot's Microsoft App ID, or the client id of its managed identity)`);
  let domain = '';
  const httpsUrl = (name: string, value: string): string | undefined => {
    try {
      const url = new URL(value);
      if (url.protocol !== 'https:') {
        problems.push(`${name}: must be an https address (got ${value})${name === 'PUBLIC_URL' ? '; set PUBLIC_URL to the bot\'s public address or pass --public-url' : ''}`);
        return undefined;
      }
      return url.toString().replace(/\/$/, '');
    } catch {
      problems.push(`${name}: not a URL (got "${value}")`);
      return undefined;
    }
  };
  const publicUrl = httpsUrl('PUBLIC_URL', options.publicUrl);
  if (publicUrl) {
    const host = new URL(publicUrl).hostname;
    if (host === 'localhost' || /^127\.|^\[?::1\]?$/.test(host)) problems.push(`PUBLIC_URL: ${publicUrl} is this machine; Teams needs the bot's public address`);
    domain = new URL(publicUrl).host;
  }
  if (!/^\d+\.\d+\.\d+$/.test(options.version)) problems.push(`version: "${options.version}" must be three numbers, like 1.0.0 (raise it for every upload that replaces an earlier package)`);
  const websiteUrl = options.websiteUrl ? httpsUrl('--website-url', options.websiteUrl) : publicUrl;
  const privacyUrl = options.privacyUrl ? httpsUrl('--privacy-url', options.privacyUrl) : websiteUrl;
  const termsUrl = options.termsUrl ? httpsUrl('--terms-url', options.termsUrl) : websiteUrl;
  if (!options.privacyUrl) warnings.push('privacyUrl: defaults to the website address; pass --privacy-url with the school\'s privacy notice');
  if (!options.termsUrl) warnings.push('termsOfUseUrl: defaults to the website address; pass --terms-url with the school\'s acceptable use terms');
  if (problems.length) throw new PackageError(problems);
  return {
    values: { MICROSOFT_APP_ID: options.appId.toLowerCase(), BOT_DOMAIN: domain, APP_VERSION: options.version, WEBSITE_URL: websiteUrl!, PRIVACY_URL: privacyUrl!, TERMS_URL: termsUrl! },
    warnings,
  };
}

/** A zip entry date fixed so the same inputs give the same bytes. */
const ZIP_DATE = new Date(Date.UTC(2020, 0, 1));

/** Fills, validates and zips; then re-opens the zip and checks it. Throws PackageError listing every problem. */
export async function buildTeamsPackage(options: PackageOptions): Promise<{ file: string; manifest: Record<string, unknown>; entries: string[]; warnings: string[] }> {
  const dir = options.templateDir ?? manifestDir;
  const { values, warnings } = manifestValues(options);
  const manifest = fillTemplate(readTemplate(dir), values as unknown as Record<string, string>) as Record<string, unknown>;
  const problems = validateManifest(manifest);

  const icons = (manifest.icons ?? {}) as Record<string, unknown>;
  const files = new Map<string, Buffer>();
  for (const kind of Object.keys(ICON_RULES) as Array<keyof typeof ICON_RULES>) {
    const name = icons[kind];
    if (typeof name !== 'string') continue; // the schema has reported it
    if (name.includes('/') || name.includes('\\')) {
      problems.push(`icons.${kind}: "${name}" must be a file name at the root of the package, not a path`);
      continue;
    }
    const file = path.join(dir, name);
    if (!existsSync(file)) {
      problems.push(`icons.${kind}: ${name} not found in ${path.relative(repoRoot, dir) || dir}`);
      continue;
    }
    const bytes = readFileSync(file);
    problems.push(...checkIcon(kind, bytes, name));
    files.set(name, bytes);
  }
  if (problems.length) throw new PackageError(problems);

  const zip = new JSZip();
  zip.file(MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`, { date: ZIP_DATE, createFolders: false });
  for (const [name, bytes] of files) zip.file(name, bytes, { date: ZIP_DATE, createFolders: false, binary: true });
  const bytes = await zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 9 }, platform: 'UNIX' });
  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(options.out, bytes);

  const check = await checkTeamsPackage(options.out);
  if (check.problems.length) throw new PackageError(check.problems.map((problem) => `${path.basename(options.out)}: ${problem}`));
  return { file: options.out, manifest, entries: check.entries, warnings };
}

/**
 * Opens a written package and checks it as Teams will: manifest.json and the icons it names at the
 * root and nothing else, the manifest valid against its schema, the icons right.
 */
export async function checkTeamsPackage(file: string): Promise<{ entries: string[]; problems: string[] }> {
  let zip: JSZip;
  try {
    zip = await JSZip.loadAsync(readFileSync(file));
  } catch (error) {
    return { entries: [], problems: [`not a readable zip (${(error as Error).message})`] };
  }
  const entries = Object.keys(zip.files).sort();
  const problems: string[] = [];
  for (const name of entries) {
    if (zip.files[name]!.dir || name.includes('/')) problems.push(`${name}: folders are not allowed; every file sits at the root of the package`);
  }
  const manifestEntry = zip.file(MANIFEST_FILE);
  if (!manifestEntry) return { entries, problems: [...problems, `${MANIFEST_FILE}: missing at the root of the package`] };
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(await manifestEntry.async('string')) as Record<string, unknown>;
  } catch (error) {
    return { entries, problems: [...problems, `${MANIFEST_FILE}: not valid JSON (${(error as Error).message})`] };
  }
  problems.push(...validateManifest(manifest).map((problem) => `${MANIFEST_FILE}: ${problem}`));
  const icons = (manifest.icons ?? {}) as Record<string, unknown>;
  const expected = new Set([MANIFEST_FILE]);
  for (const kind of Object.keys(ICON_RULES) as Array<keyof typeof ICON_RULES>) {
    const name = icons[kind];
    if (typeof name !== 'string') continue;
    expected.add(name);
    const entry = zip.file(name);
    if (!entry) problems.push(`icons.${kind}: ${name} is not in the package`);
    else problems.push(...checkIcon(kind, await entry.async('nodebuffer'), name));
  }
  for (const name of entries) if (!expected.has(name) && !zip.files[name]!.dir) problems.push(`${name}: not referenced by the manifest`);
  return { entries, problems };
}

// ---------------------------------------------------------------------------------------------
// The command

const usage = `Usage: npm run package:teams -- [--app-id GUID] [--public-url https://HOST] [--out FILE]
       [--version X.Y.Z] [--website-url URL] [--privacy-url URL] [--terms-url URL]
Without --app-id or --public-url, MICROSOFT_APP_ID and PUBLIC_URL are read from the configuration
(the environment or .env). Writes dist/teams-app.zip unless --out is given.`;

/**
 * Runs the command. `env` is what the configuration is read from when a flag is absent (the
 * process environment when omitted, through src/config.ts). Returns the exit code.
 */
export async function main(argv: string[], io: { env?: Record<string, string | undefined>; out?: (line: string) => void; err?: (line: string) => void } = {}): Promise<number> {
  const out = io.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = io.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  let flags;
  try {
    flags = parseArgs({
      args: argv,
      options: {
        'app-id': { type: 'string' },
        'public-url': { type: 'string' },
        out: { type: 'string' },
        version: { type: 'string' },
        'website-url': { type: 'string' },
        'privacy-url': { type: 'string' },
        'terms-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    err(`${(error as Error).message}\n${usage}`);
    return 2;
  }
  if (flags.help) {
    out(usage);
    return 0;
  }
  try {
    let appId = flags['app-id'];
    let publicUrl = flags['public-url'];
    if (appId === undefined || publicUrl === undefined) {
      const settings = loadSettings(io.env);
      appId ??= settings.teams.appId ?? '';
      publicUrl ??= settings.publicUrl;
    }
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const result = await buildTeamsPackage({
      appId,
      publicUrl,
      version: flags.version ?? pkg.version,
      websiteUrl: flags['website-url'],
      privacyUrl: flags['privacy-url'],
      termsUrl: flags['terms-url'],
      out: path.resolve(flags.out ?? defaultOutput),
    });
    for (const warning of result.warnings) err(`note: ${warning}`);
    const bot = (result.manifest.bots as Array<{ botId: string }>)[0]!;
    err(`Teams app package checked: ${result.entries.join(', ')}; app ${bot.botId}, version ${String(result.manifest.version)}, domain ${(result.manifest.validDomains as string[]).join(', ')}`);
    out(result.file);
    return 0;
  } catch (error) {
    if (error instanceof PackageError) {
      err(`The Teams app package was not written:\n${error.problems.map((p) => `  ${p}`).join('\n')}`);
      return 1;
    }
    if (isAppError(error, 'config_invalid')) {
      err(`The configuration is not valid:\n${error.message.split('\n').map((line) => `  ${line}`).join('\n')}`);
      return 1;
    }
    throw error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  loadDotEnv();
  process.exitCode = await main(process.argv.slice(2));
}
