/** Starts the real app (restify, CloudAdapter, store) on a loopback port with a temporary data folder. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSettings, type Settings } from '../../src/config.ts';
import { silentLogger, type Logger } from '../../src/logger.ts';
import { createApp, type App, type DeliveryOptions } from '../../src/main.ts';
import type { Store } from '../../src/store/store.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface RunningApp {
  app: App;
  url: string;
  settings: Settings;
  dataDir: string;
  post(pathname: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * `store` replaces the store the settings would build (e.g. a counting or failing wrapper); `log`
 * replaces the silent logger (e.g. pino writing to an in-memory stream, to assert on log lines);
 * `dataDir` reuses a folder prepared beforehand (e.g. by the CLI) instead of a fresh one; `delivery`
 * shortens the outbox's, the jobs' and the progress cards' timings.
 */
export async function startApp(env: Record<string, string> = {}, options: { store?: Store; log?: Logger; dataDir?: string; delivery?: DeliveryOptions } = {}): Promise<RunningApp> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'esafety-app-')));
  const settings = loadSettings({
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    POLICIES_DIR: path.join(repoRoot, 'policies'),
    RATE_LIMIT_PER_MINUTE: '0',
    ...env,
  });
  const app = await createApp(settings, options.log ?? silentLogger(), { store: options.store, delivery: options.delivery });
  const port = await app.listen();
  const url = `http://127.0.0.1:${port}`;
  return {
    app,
    url,
    settings,
    dataDir,
    post: (pathname, body, headers = {}) =>
      fetch(`${url}${pathname}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    stop: async () => {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
