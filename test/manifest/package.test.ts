/**
 * `npm run package:teams` writes a zip Teams accepts: manifest.json and the two icons at the root,
 * the manifest valid; the script re-opens what it wrote and refuses a bad package. Run into a
 * temporary folder, once in-process and once as the real command with its configuration.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import JSZip from 'jszip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTeamsPackage, checkTeamsPackage, main, PackageError, repoRoot, validateManifest } from '../../scripts/package-teams.ts';
import { manifestDir } from '../../scripts/package-teams.icons.ts';

const APP_ID = '0b7e6c1d-2a3f-4b5c-8d9e-1f2a3b4c5d6e';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esafety-teams-package-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function zipOf(entries: Record<string, string | Buffer>): Promise<string> {
  const zip = new JSZip();
  for (const [name, content] of Object.entries(entries)) zip.file(name, content);
  const file = path.join(dir, `tampered-${Object.keys(entries).length}-${Math.random().toString(36).slice(2)}.zip`);
  await writeFile(file, await zip.generateAsync({ type: 'nodebuffer' }));
  return file;
}

describe('the Teams app package', () => {
  let file: string;

  beforeAll(async () => {
    const result = await buildTeamsPackage({ appId: APP_ID, publicUrl: 'https://esafety-test.azurewebsites.net', version: '1.0.0', out: path.join(dir, 'teams-app.zip') });
    file = result.file;
  });

  it('holds manifest.json, color.png and outline.png at its root, and nothing else', async () => {
    const zip = await JSZip.loadAsync(await readFile(file));
    expect(Object.keys(zip.files).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    for (const entry of Object.values(zip.files)) expect(entry.dir).toBe(false);
  });

  it('carries a filled manifest that is valid against the official schema', async () => {
    const zip = await JSZip.loadAsync(await readFile(file));
    const manifest = JSON.parse(await zip.file('manifest.json')!.async('string'));
    expect(validateManifest(manifest)).toEqual([]);
    expect(manifest).toMatchObject({ id: APP_ID, version: '1.0.0', validDomains: ['esafety-test.azurewebsites.net'], bots: [{ botId: APP_ID }] });
  });

  it('carries the icons byte for byte', async () => {
    const zip = await JSZip.loadAsync(await readFile(file));
    for (const name of ['color.png', 'outline.png']) {
      expect(Buffer.from(await zip.file(name)!.async('uint8array')).equals(await readFile(path.join(manifestDir, name)))).toBe(true);
    }
  });

  it('is reproducible: the same inputs give the same bytes', async () => {
    const again = await buildTeamsPackage({ appId: APP_ID, publicUrl: 'https://esafety-test.azurewebsites.net', version: '1.0.0', out: path.join(dir, 'again.zip') });
    expect((await readFile(again.file)).equals(await readFile(file))).toBe(true);
  });

  it('the check refuses a package with a folder, a stray file, a missing icon or a bad manifest', async () => {
    const manifest = await readFile(path.join(dir, 'teams-app.zip')).then((bytes) => JSZip.loadAsync(bytes)).then((zip) => zip.file('manifest.json')!.async('string'));
    const color = await readFile(path.join(manifestDir, 'color.png'));
    const outline = await readFile(path.join(manifestDir, 'outline.png'));

    const inFolder = await checkTeamsPackage(await zipOf({ 'app/manifest.json': manifest, 'app/color.png': color, 'app/outline.png': outline }));
    expect(inFolder.problems).toContain('manifest.json: missing at the root of the package');
    expect(inFolder.problems.join('\n')).toContain('app/manifest.json: folders are not allowed');

    const stray = await checkTeamsPackage(await zipOf({ 'manifest.json': manifest, 'color.png': color, 'outline.png': outline, 'notes.txt': 'x' }));
    expect(stray.problems).toEqual(['notes.txt: not referenced by the manifest']);

    const noOutline = await checkTeamsPackage(await zipOf({ 'manifest.json': manifest, 'color.png': color }));
    expect(noOutline.problems).toEqual(['icons.outline: outline.png is not in the package']);

    const swapped = await checkTeamsPackage(await zipOf({ 'manifest.json': manifest, 'color.png': outline, 'outline.png': color }));
    expect(swapped.problems).toContain('icons.color (color.png): must be 192x192 pixels, is 32x32');
    expect(swapped.problems).toContain('icons.outline (outline.png): must be 32x32 pixels, is 192x192');

    const badBot = JSON.parse(manifest);
    badBot.bots[0].botId = 'bot';
    const invalid = await checkTeamsPackage(await zipOf({ 'manifest.json': JSON.stringify(badBot), 'color.png': color, 'outline.png': outline }));
    expect(invalid.problems).toEqual([expect.stringMatching(/^manifest\.json: bots\[0\]\.botId: must match pattern/)]);

    expect((await checkTeamsPackage(await zipOf({ 'manifest.json': '{ nope', 'color.png': color, 'outline.png': outline }))).problems[0]).toMatch(/^manifest\.json: not valid JSON/);
  });

  it('a template whose icon is the wrong size is refused before anything is written', async () => {
    const templateDir = path.join(dir, 'bad-template');
    await mkdir(templateDir);
    await cp(path.join(manifestDir, 'manifest.json'), path.join(templateDir, 'manifest.json'));
    await cp(path.join(manifestDir, 'outline.png'), path.join(templateDir, 'outline.png'));
    await cp(path.join(manifestDir, 'outline.png'), path.join(templateDir, 'color.png'));
    const out = path.join(dir, 'never.zip');
    await expect(buildTeamsPackage({ appId: APP_ID, publicUrl: 'https://bot.example.org', version: '1.0.0', out, templateDir })).rejects.toThrow(PackageError);
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });
});

describe('the package:teams command', () => {
  it('reads MICROSOFT_APP_ID and PUBLIC_URL through the configuration module and prints the zip path', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['--out', path.join(dir, 'from-config.zip')], {
      env: { MICROSOFT_APP_ID: APP_ID, PUBLIC_URL: 'https://esafety-school.azurewebsites.net' },
      out: (line) => out.push(line),
      err: (line) => err.push(line),
    });
    expect(err.join('\n')).toContain('Teams app package checked');
    expect(code).toBe(0);
    expect(out).toEqual([path.join(dir, 'from-config.zip')]);
    const manifest = JSON.parse(await (await JSZip.loadAsync(await readFile(out[0]!))).file('manifest.json')!.async('string'));
    expect(manifest.validDomains).toEqual(['esafety-school.azurewebsites.net']);
  });

  it('without an app id or a public address, exits 1 naming both settings', async () => {
    const err: string[] = [];
    const code = await main(['--out', path.join(dir, 'never.zip')], { env: {}, out: () => undefined, err: (line) => err.push(line) });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/MICROSOFT_APP_ID: required/);
    expect(err.join('\n')).toMatch(/PUBLIC_URL: must be an https address \(got http:\/\/localhost:3978\)/);
  });

  it('reports an invalid configuration line by line', async () => {
    const err: string[] = [];
    const code = await main([], { env: { STORE: 'mongo' }, out: () => undefined, err: (line) => err.push(line) });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/The configuration is not valid:\n {2}STORE: /);
  });

  it('runs as `npm run package:teams` does, in a child process with only the flags', async () => {
    const tsx = pathToFileURL(path.join(repoRoot, 'node_modules/tsx/dist/loader.mjs')).href;
    const script = path.join(repoRoot, 'scripts/package-teams.ts');
    const target = path.join(dir, 'cli.zip');
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', tsx, script, '--app-id', APP_ID, '--public-url', 'https://bot.example.org', '--out', target, '--privacy-url', 'https://school.example.org/privacy', '--terms-url', 'https://school.example.org/aup'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.stderr).not.toMatch(/note:/);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(target);
    expect((await checkTeamsPackage(target)).problems).toEqual([]);
  });
});
