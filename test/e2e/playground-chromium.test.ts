/**
 * The browser-test helper's install step, without installing anything: parallel callers (test files
 * in other workers, a picture script) run the install once and the others wait for it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, ensureInstalled } from '../helpers/chromium.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esafety-install-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('installing chromium once per run', () => {
  it('runs the install once when several callers find it missing at the same time', async () => {
    const binary = path.join(dir, 'chromium');
    const lockFile = path.join(dir, 'install.lock');
    let installs = 0;
    const install = async () => {
      installs++;
      await new Promise((resolve) => setTimeout(resolve, 200));
      await writeFile(binary, '#!/bin/sh\n');
    };
    await Promise.all(Array.from({ length: 4 }, () => ensureInstalled({ binary, lockFile, install, pollMs: 20 })));
    expect(installs).toBe(1);
    expect(existsSync(lockFile)).toBe(false);
  });

  it('does nothing when the binary is there, and takes over a stale lock', async () => {
    const binary = path.join(dir, 'chromium');
    const lockFile = path.join(dir, 'install.lock');
    await writeFile(lockFile, '12345\n');
    let installs = 0;
    await ensureInstalled({ binary, lockFile, pollMs: 20, staleMs: 0, install: async () => void (installs++, await writeFile(binary, '')) });
    expect(installs).toBe(1);
    await ensureInstalled({ binary, lockFile, install: async () => void installs++ });
    expect(installs).toBe(1);
  });

  it('reports an install that did not produce the binary', async () => {
    await expect(ensureInstalled({ binary: path.join(dir, 'never'), lockFile: path.join(dir, 'l'), install: async () => undefined })).rejects.toThrow(/still missing/);
  });

  it('launches with the flags this machine needs', () => {
    expect(CHROMIUM_ARGS).toEqual(expect.arrayContaining(['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']));
  });
});
