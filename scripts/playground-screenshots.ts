/**
 * `npm run screenshots`: the pictures of the playground that the README shows, taken from the real
 * app in headless Chromium (installed first when missing, as for the browser tests). Starts its own
 * server on a free loopback port with a temporary data folder and the sample policies, so it never
 * touches ./data or a .env file.
 *
 *   docs/images/playground-answer.png      a teacher's question, answered and cited
 *   docs/images/playground-escalation.png  the coordinator's view of a question the policies don't cover
 *   docs/images/playground-incident.png    the incident report card, immediate steps first
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { loadSettings } from '../src/config.ts';
import { silentLogger } from '../src/logger.ts';
import { createApp } from '../src/main.ts';
import { launchChromium } from '../test/helpers/chromium.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = path.join(root, 'docs', 'images');
const WAIT = { timeout: 30_000 };

async function settle(page: Page): Promise<void> {
  // Web Chat scrolls smoothly to the newest message: wait until the scroll position stops moving.
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const top = await page.evaluate(() => document.querySelector('.webchat__basic-transcript__scrollable')?.scrollTop ?? 0);
    if (top === last) return;
    last = top;
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  }
}

async function open(page: Page, url: string, as: string): Promise<void> {
  await page.goto(`${url}/?as=${as}`);
  await page.locator('[data-id="webchat-sendbox-input"]').waitFor(WAIT);
  await page.waitForFunction(() => document.getElementById('connection')?.textContent === 'Connected', undefined, WAIT);
  // Web Chat's own "Connecting…" notice goes once it has caught up.
  await page.locator('.webchat__connectivityStatus').waitFor({ state: 'detached', ...WAIT });
}

async function ask(page: Page, text: string, expected: string | RegExp): Promise<void> {
  const input = page.locator('[data-id="webchat-sendbox-input"]');
  await input.fill(text);
  await input.press('Enter');
  await page.locator('.ac-adaptiveCard').filter({ hasText: expected }).last().waitFor(WAIT);
}

async function shoot(page: Page, name: string): Promise<void> {
  await settle(page);
  await page.locator('[data-id="webchat-sendbox-input"]').blur();
  const file = path.join(outDir, `playground-${name}.png`);
  await page.screenshot({ path: file });
  process.stderr.write(`${path.relative(root, file)} (${Math.round((await stat(file)).size / 1024)} KB)\n`);
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-screenshots-'));
  const settings = loadSettings({
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'development',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    POLICIES_DIR: path.join(root, 'policies'),
    RATE_LIMIT_PER_MINUTE: '0',
  });
  const app = await createApp(settings, silentLogger());
  const url = `http://127.0.0.1:${await app.listen()}`;
  const browser = await launchChromium({ viewport: { width: 880, height: 820 } });
  try {
    await mkdir(outDir, { recursive: true });
    const page = await browser.newPage();

    await open(page, url, 'teacher');
    await ask(page, 'can pupils use phones in class?', /version \d{4}/);
    await shoot(page, 'answer');

    await open(page, url, 'teacher');
    await ask(page, 'how do I book the school minibus for a trip?', /don.t cover that/);
    await page.locator('.ac-adaptiveCard').last().getByRole('button', { name: 'Ask the coordinator' }).click();
    await page.getByText("I've sent your question to the e-safety coordinator").last().waitFor(WAIT);
    await open(page, url, 'coordinator');
    await page.locator('.ac-adaptiveCard').filter({ hasText: 'A question the policies do not answer' }).last().waitFor(WAIT);
    await page.locator('.ac-adaptiveCard').last().getByLabel('Your answer').fill('Book it with the office at least a week ahead; the form is on the staff intranet.');
    await page.setViewportSize({ width: 880, height: 600 });
    await shoot(page, 'escalation');
    await page.setViewportSize({ width: 880, height: 820 });

    await open(page, url, 'dsl');
    await ask(page, 'report an incident', /Report an incident or concern/);
    // Show the top of the report card: the immediate steps and the first questions.
    await settle(page);
    await page.locator('.ac-adaptiveCard').last().evaluate((card) => card.scrollIntoView({ block: 'start' }));
    await shoot(page, 'incident');
  } finally {
    await browser.close();
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
