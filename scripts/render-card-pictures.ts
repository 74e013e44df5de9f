/**
 * `npm run pictures`: pictures of the real cards for the README, drawn by the official adaptivecards
 * library in headless Chromium. The cards come from the card catalogue (test/cards/catalogue.ts,
 * the entries with a `picture`), built by the real bot core on a temporary store, rendered to
 * Adaptive Card JSON by the Teams renderer, then drawn by adaptivecards' own bundle in a page served
 * from this machine (loopback only: the page may load nothing from anywhere else).
 *
 *   npm run pictures                 writes docs/images/card-*.png
 *   npm run pictures -- --out DIR    writes them somewhere else
 *
 * Needs Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { renderAdaptiveCard } from '../src/adapters/teams/adaptive-card.ts';
import { catalogue } from '../test/cards/catalogue.ts';
import { CardHarness } from '../test/cards/harness.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

export const CHROMIUM = '/usr/bin/chromium';
/** Headless, and nothing that phones home: the network here is closed and the page is local. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** Pictures above this are refused: the README should stay light. */
export const MAX_PICTURE_BYTES = 150 * 1024;
const CARD_WIDTH = 440;

/** Teams' text colours, the same on both container styles. */
const foregroundColors = {
  default: { default: '#242424', subtle: '#616161' },
  accent: { default: '#5B5FC7', subtle: '#5B5FC7' },
  attention: { default: '#C4314B', subtle: '#C4314B' },
  good: { default: '#237B4B', subtle: '#237B4B' },
  warning: { default: '#835C00', subtle: '#835C00' },
};
/** A light Teams-like host: Teams' own colours and spacing, with fonts this machine has. */
const hostConfig = {
  fontFamily: "'Segoe UI', 'Liberation Sans', 'DejaVu Sans', Arial, sans-serif",
  spacing: { small: 4, default: 8, medium: 16, large: 20, extraLarge: 24, padding: 16 },
  separator: { lineThickness: 1, lineColor: '#E0E0E0' },
  fontSizes: { small: 12, default: 14, medium: 16, large: 20, extraLarge: 24 },
  fontWeights: { lighter: 300, default: 400, bolder: 600 },
  supportsInteractivity: true,
  containerStyles: {
    default: {
      backgroundColor: '#FFFFFF',
      foregroundColors,
    },
    emphasis: {
      backgroundColor: '#F5F5F5',
      foregroundColors,
    },
  },
  actions: { maxActions: 6, spacing: 'default', buttonSpacing: 8, showCard: { actionMode: 'inline' }, actionsOrientation: 'horizontal', actionAlignment: 'left' },
  inputs: { label: { inputSpacing: 'small', requiredInputs: { suffix: ' *', suffixColor: 'attention' } } },
};

/** The page: the library, markdown-it for the text (as the library's docs advise), and the cards. */
const page = (cards: Array<{ file: string; json: unknown }>) => `<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><title>cards</title>
<style>
  body { margin: 0; padding: 12px; background: #F0F0F0; font-family: ${hostConfig.fontFamily}; }
  .card { width: ${CARD_WIDTH}px; margin: 0 0 12px; border-radius: 6px; border: 1px solid #E0E0E0; background: #FFF; overflow: hidden; }
  .ac-pushButton { font: 600 14px ${hostConfig.fontFamily}; border: 1px solid #D1D1D1; border-radius: 4px; background: #FFF; color: #242424; padding: 5px 12px; margin: 0; }
  .ac-pushButton.style-positive { background: #5B5FC7; border-color: #5B5FC7; color: #FFF; }
  .ac-input { font: 14px ${hostConfig.fontFamily}; }
  .ac-textInput, .ac-multichoiceInput, .ac-dateInput { border: 1px solid #D1D1D1; border-radius: 4px; padding: 5px 8px; }
  .ac-actionSet, .ac-actionSet > div { flex-wrap: wrap !important; row-gap: 8px; }
  .ac-textBlock p { margin: 0 0 6px; } .ac-textBlock p:last-child { margin-bottom: 0; }
</style>
<script src="/markdown-it.js"></script>
<script src="/adaptivecards.js"></script>
</head><body>
<script>
  const markdown = window.markdownit({ html: false, linkify: false, breaks: true });
  AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => { result.outputHtml = markdown.render(text); result.didProcess = true; };
  const hostConfig = new AdaptiveCards.HostConfig(${JSON.stringify(hostConfig)});
  const cards = ${JSON.stringify(cards)};
  window.problems = [];
  cards.forEach((entry, i) => {
    const card = new AdaptiveCards.AdaptiveCard();
    card.hostConfig = hostConfig;
    const context = new AdaptiveCards.SerializationContext();
    card.parse(entry.json, context);
    for (let e = 0; e < context.eventCount; e++) window.problems.push(entry.file + ': ' + context.getEventAt(e).message);
    const wrapper = document.createElement('div');
    wrapper.className = 'card';
    wrapper.id = 'card-' + i;
    wrapper.appendChild(card.render());
    document.body.appendChild(wrapper);
  });
  window.rendered = true;
</script>
</body></html>`;

async function serve(routes: Record<string, { type: string; body: string | Buffer }>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const route = routes[new URL(req.url ?? '/', 'http://127.0.0.1').pathname];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store' }).end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

export async function renderPictures(outDir: string, log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<string[]> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium first (apt-get update && apt-get install -y chromium)`);
  const wanted = catalogue.filter((entry) => entry.picture);
  const harness = await CardHarness.start();
  const cards: Array<{ file: string; json: unknown }> = [];
  try {
    for (const entry of catalogue) {
      // In catalogue order: a scenario may rely on people an earlier one introduced.
      if (!wanted.includes(entry) && !wanted.some((w) => catalogue.indexOf(w) > catalogue.indexOf(entry))) continue;
      const card = await entry.build(harness);
      if (entry.picture) cards.push({ file: entry.picture, json: renderAdaptiveCard(card) });
    }
  } finally {
    await harness.close();
  }

  const { server, url } = await serve({
    '/': { type: 'text/html; charset=utf-8', body: page(cards) },
    '/adaptivecards.js': { type: 'text/javascript', body: readFileSync(require.resolve('adaptivecards/dist/adaptivecards.min.js')) },
    '/markdown-it.js': { type: 'text/javascript', body: readFileSync(require.resolve('markdown-it/dist/markdown-it.min.js')) },
  });
  // Loaded here: playwright-core takes a few seconds to import, and nothing else in this module needs it.
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const written: string[] = [];
  try {
    const context = await browser.newContext({ viewport: { width: CARD_WIDTH + 24, height: 800 }, deviceScaleFactor: 1.5, locale: 'en-GB', reducedMotion: 'reduce' });
    // The page is ours and local: anything it tries to fetch from elsewhere is refused.
    await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
    const tab = await context.newPage();
    await tab.goto(url);
    await tab.waitForFunction(() => (window as unknown as { rendered?: boolean }).rendered === true);
    const problems = await tab.evaluate(() => (window as unknown as { problems: string[] }).problems);
    if (problems.length) throw new Error(`the library reported problems while rendering:\n${problems.join('\n')}`);
    mkdirSync(outDir, { recursive: true });
    for (const [i, card] of cards.entries()) {
      const bytes = await tab.locator(`#card-${i}`).screenshot({ type: 'png', animations: 'disabled' });
      if (bytes.length > MAX_PICTURE_BYTES) throw new Error(`${card.file}: ${bytes.length} bytes, over ${MAX_PICTURE_BYTES}`);
      const file = path.join(outDir, card.file);
      writeFileSync(file, bytes);
      written.push(file);
      log(`wrote ${path.relative(repoRoot, file) || file} (${Math.round(bytes.length / 1024)} KB)`);
    }
  } finally {
    await browser.close();
    server.close();
  }
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { out: { type: 'string' } } });
  try {
    await renderPictures(path.resolve(values.out ?? path.join(repoRoot, 'docs', 'images')));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
