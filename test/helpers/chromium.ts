/**
 * Headless Chromium for browser tests and picture scripts: Debian's chromium driven by
 * playwright-core (which never downloads a browser of its own). CI starts on a clean machine, so
 * when /usr/bin/chromium is missing it is installed once per run with apt-get, under a lock file so
 * that test files (and scripts) running in parallel don't both install; the others wait for it.
 *
 * CHROMIUM_PATH names another binary and skips the install.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/**
 * The flags this machine needs: without the background-networking ones Chromium keeps trying to
 * reach Google's hosts, which the closed network refuses. As root it needs --no-sandbox.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const LOCK_FILE = path.join(tmpdir(), 'esafety-chromium-install.lock');
/** A lock older than this is left over from a run that died mid-install. */
const STALE_LOCK_MS = 15 * 60_000;
const INSTALL_TIMEOUT_MS = 12 * 60_000;

let found: Promise<string> | undefined;

/** The Chromium binary, installing Debian's package first when it is missing. */
export function chromiumExecutable(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<string> {
  found ??= locateOrInstall(log).catch((error) => {
    found = undefined;
    throw error;
  });
  return found;
}

async function locateOrInstall(log: (line: string) => void): Promise<string> {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`CHROMIUM_PATH=${explicit} does not exist`);
    return explicit;
  }
  await ensureInstalled({ binary: DEBIAN_CHROMIUM, lockFile: LOCK_FILE, install: () => aptInstallChromium(log) });
  return DEBIAN_CHROMIUM;
}

/**
 * Makes sure `binary` exists, running `install` at most once across every process that calls this
 * with the same lock file at the same time: the first takes the lock (an exclusive create) and
 * installs; the others wait until the binary appears or the lock goes (a holder that died leaves
 * a stale lock, removed after 15 minutes).
 */
export async function ensureInstalled(options: { binary: string; lockFile: string; install: () => Promise<void>; pollMs?: number; timeoutMs?: number; staleMs?: number }): Promise<void> {
  const { binary, lockFile } = options;
  const deadline = Date.now() + (options.timeoutMs ?? INSTALL_TIMEOUT_MS);
  for (;;) {
    if (existsSync(binary)) return;
    const lock = await open(lockFile, 'wx').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return undefined;
      throw error;
    });
    if (lock) {
      try {
        await lock.write(`${process.pid}\n`);
        // Another holder may have finished between our check and taking the lock.
        if (!existsSync(binary)) await options.install();
      } finally {
        await lock.close();
        await unlink(lockFile).catch(() => undefined);
      }
      if (!existsSync(binary)) throw new Error(`the install finished but ${binary} is still missing`);
      return;
    }
    // Someone else is installing: wait for the binary or for their lock to go (or go stale).
    const age = await stat(lockFile).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > (options.staleMs ?? STALE_LOCK_MS)) await unlink(lockFile).catch(() => undefined);
    if (Date.now() > deadline) throw new Error(`timed out waiting for another process to install ${binary} (lock ${lockFile})`);
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
  }
}

function aptInstallChromium(log: (line: string) => void): Promise<void> {
  const root = process.getuid?.() === 0;
  const script = 'apt-get update && apt-get install -y chromium';
  const [command, args] = root ? ['bash', ['-c', script]] : ['sudo', ['-n', 'bash', '-c', script]];
  log(`chromium is not installed: running "${script}"${root ? '' : ' with sudo'} (once per run)`);
  return new Promise((resolve, reject) => {
    const child = spawn(command as string, args as string[], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run apt-get to install chromium: ${error.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) {
        log('chromium installed');
        resolve();
      } else reject(new Error(`installing chromium failed (exit ${code}):\n${output}`));
    });
  });
}

export interface RunningChromium {
  context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Launches headless Chromium with a fresh, empty user-data-dir (removed on close). Pages get a
 * 1000×760 viewport unless told otherwise.
 */
export async function launchChromium(options: { viewport?: { width: number; height: number }; deviceScaleFactor?: number } = {}): Promise<RunningChromium> {
  const executablePath = await chromiumExecutable();
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'esafety-chromium-profile-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: options.viewport ?? { width: 1000, height: 760 },
      deviceScaleFactor: options.deviceScaleFactor ?? 1,
      timeout: 60_000,
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A Browser, for callers that want several contexts (picture scripts): playwright-core starts it
 * with a fresh temporary user-data-dir of its own, removed when the browser closes.
 */
export async function launchChromiumBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: await chromiumExecutable(), headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}
