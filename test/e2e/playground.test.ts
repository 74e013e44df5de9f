/**
 * The playground in a real browser: headless Debian Chromium (installed by the helper when missing)
 * driven by playwright-core, against the real app. Web Chat renders the bot's real Adaptive Cards;
 * everything goes through the loopback Direct Line bridge and the Teams adapter.
 *
 * Few tests, each a whole journey; waits are on what the page shows, never on time.
 */
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { launchChromium, type RunningChromium } from '../helpers/chromium.ts';

const WAIT = { timeout: 20_000 };
let running: RunningApp;
let browser: RunningChromium;
const pageProblems: string[] = [];

beforeAll(async () => {
  running = await startApp();
  browser = await launchChromium();
}, 15 * 60_000); // a clean machine installs chromium first
afterAll(async () => {
  await browser?.close();
  await running?.stop();
});

async function open(as?: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to/.test(message.text())) pageProblems.push(message.text());
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(running.url) && !url.startsWith('data:') && !url.startsWith(`blob:${running.url}`)) pageProblems.push(`request outside the server: ${request.url()}`);
  });
  await page.goto(`${running.url}/${as ? `?as=${as}` : ''}`);
  await sendBox(page).waitFor(WAIT);
  await expect.poll(() => page.locator('#connection').textContent(), WAIT).toBe('Connected');
  return page;
}

const sendBox = (page: Page) => page.locator('[data-id="webchat-sendbox-input"]');
const cards = (page: Page) => page.locator('.ac-adaptiveCard');
const transcript = (page: Page) => page.locator('.webchat__basic-transcript');

/** Types into Web Chat's box and sends; resolves with the last card that arrived after it. */
async function ask(page: Page, question: string): Promise<Locator> {
  const before = await cards(page).count();
  await sendBox(page).fill(question);
  await sendBox(page).press('Enter');
  await expect.poll(() => cards(page).count(), WAIT).toBeGreaterThan(before);
  return cards(page).last();
}

async function switchTo(page: Page, key: string): Promise<void> {
  await page.locator('#identity').selectOption(key);
  await page.locator(`.webchat[data-identity="${key}"]`).waitFor(WAIT);
  await expect.poll(() => page.locator('#connection').textContent(), WAIT).toBe('Connected');
}

async function focusedDescription(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    return `${el?.tagName ?? ''} ${el?.getAttribute('data-id') ?? ''} ${el?.getAttribute('aria-label') ?? ''} ${el?.className ?? ''}`;
  });
}

async function tabUntil(page: Page, matches: RegExp, options: { shift?: boolean; max?: number } = {}): Promise<void> {
  for (let i = 0; i < (options.max ?? 15); i++) {
    await page.keyboard.press(options.shift ? 'Shift+Tab' : 'Tab');
    if (matches.test(await focusedDescription(page))) return;
  }
  throw new Error(`never reached ${matches} with ${options.shift ? 'Shift+' : ''}Tab; focus is on ${await focusedDescription(page)}`);
}

describe('the playground in Chromium', () => {
  it('says what it is, and answers a question with the cited rule in a real Adaptive Card', async () => {
    const page = await open('teacher');
    expect(await page.title()).toMatch(/^esafety-bot playground/);
    await expect.poll(() => page.locator('h1').textContent()).toBe('esafety-bot playground');
    expect(await page.locator('p.intro').count()).toBe(2);
    expect(await page.locator('label[for="identity"]').textContent()).toBe('You are');

    const card = await ask(page, 'can kids use their mobiles in my lesson?');
    await expect.poll(() => card.innerText(), WAIT).toMatch(/version 2026/);
    const shown = await card.innerText();
    expect(shown).toMatch(/Mobile (Phones )?and Personal Devices/i);
    expect(await card.getByRole('button', { name: 'Ask the coordinator' }).count()).toBe(1);
    await page.close();
  });

  it('works with the keyboard alone: tab to the box, type, Enter; then into the card and press a button', async () => {
    const page = await open('dsl');
    await tabUntil(page, /webchat-sendbox-input/);
    const before = await cards(page).count();
    await page.keyboard.type('can pupils use phones in class?');
    await page.keyboard.press('Enter');
    await expect.poll(() => cards(page).count(), WAIT).toBeGreaterThan(before);
    await expect.poll(() => cards(page).last().innerText(), WAIT).toMatch(/version \d{4}/);

    // Back into the chat history, into the newest message, to its "Helpful" button.
    await tabUntil(page, /webchat__basic-transcript(?!__)/, { shift: true, max: 5 });
    await page.keyboard.press('Enter');
    expect(await focusedDescription(page)).toMatch(/ac-pushButton/);
    await tabUntil(page, /BUTTON.*Helpful/, { max: 6 });
    await page.keyboard.press('Enter');
    await transcript(page).getByText('Thanks, glad it helped.').last().waitFor(WAIT);
    await page.close();
  });

  it('switches person: a teacher escalates, the coordinator sees it and answers, the teacher gets the answer', async () => {
    const page = await open('teacher');
    const question = `how do I book the minibus for the ${Date.now()} trip`;
    const notCovered = await ask(page, question);
    await expect.poll(() => notCovered.innerText(), WAIT).toMatch(/Our policies don.t cover that/);
    await notCovered.getByRole('button', { name: 'Ask the coordinator' }).click();
    await transcript(page).getByText("I've sent your question to the e-safety coordinator").last().waitFor(WAIT);

    await switchTo(page, 'coordinator');
    const escalation = cards(page).filter({ hasText: question }).last();
    await escalation.waitFor(WAIT);
    expect(await escalation.innerText()).toMatch(/A question the policies do not answer/);
    await escalation.getByLabel('Your answer').fill('Book it with the office at least a week ahead.');
    await escalation.getByRole('button', { name: 'Send answer' }).click();
    await transcript(page).getByText(/Your answer has been sent/).last().waitFor(WAIT);

    await switchTo(page, 'teacher');
    const answer = cards(page).filter({ hasText: 'Book it with the office at least a week ahead.' }).last();
    await answer.waitFor(WAIT);
    expect(await answer.innerText()).toMatch(/coordinator has answered your question/);
    expect(new URL(page.url()).searchParams.get('as')).toBe('teacher');
    await page.close();
  });

  it('files an incident report through the card and shows the reference; the DSL is alerted', async () => {
    const page = await open('teacher');
    const form = await ask(page, 'report an incident');
    await expect.poll(() => form.innerText(), WAIT).toMatch(/Report an incident or concern/);
    await form.getByLabel('Cyberbullying', { exact: true }).check();
    await form.getByLabel('Conduct (bullying, sharing images)').check();
    await form.getByLabel('Is a child at risk of harm right now?').selectOption({ label: 'No' });
    const yesterday = new Date(Date.now() - 24 * 3600_000).toISOString().slice(0, 10);
    await form.getByLabel('When did it happen?').fill(`${yesterday}T09:15`);
    await form.getByLabel('Where (place, platform or app)?').fill('Year 8 class group chat');
    await form.getByLabel('What happened?').fill('Two pupils posted unkind edited photos of a third pupil in the class chat.');
    await form.getByLabel('What has been done so far?').fill('Spoke to the pupils; screenshots not taken.');
    // The card marks these two conditional questions required whatever the answers above, so a
    // truthful answer to both is given (see the report: a teacher who has not told a DSL is blocked).
    await form.getByLabel('Is the concern about the headteacher?').selectOption({ label: 'No' });
    await form.getByLabel('Have you told a DSL in person?').selectOption({ label: 'Yes' });
    await form.getByLabel('When did you tell them?').fill(`${yesterday}T09:30`);
    await form.getByRole('button', { name: 'Send report' }).click();
    const thanks = transcript(page).getByText(/Your report is INC-\d{4}-\d+/).last();
    await thanks.waitFor(WAIT);
    const reference = /INC-\d{4}-\d+/.exec(await thanks.innerText())![0];

    await switchTo(page, 'dsl');
    await cards(page).filter({ hasText: reference }).last().waitFor(WAIT);
    await page.close();
  });

  it("also serves Microsoft's own Direct Line client (DirectLineJS, polling), as bundled in Web Chat", async () => {
    const page = await open('management');
    const seen = await page.evaluate(
      () =>
        new Promise<string[]>((resolve) => {
          const directLine = (window as any).WebChat.createDirectLine({ domain: '/v3/directline', webSocket: false, pollingInterval: 300 });
          directLine.setUserId('playground-coordinator');
          const lines: string[] = [];
          const timer = setTimeout(() => resolve(['timed out', ...lines]), 15_000);
          // The coordinator's chat has history: wait for the echo of this whoami, then the card after it.
          directLine.activity$.subscribe((activity: any) => {
            lines.push(`${activity.from.role}: ${activity.text ?? ''}${activity.attachments ? ' [card]' : ''}`);
            if (activity.attachments && lines.includes('user: whoami')) {
              clearTimeout(timer);
              resolve(lines);
            }
          });
          directLine.postActivity({ type: 'message', from: { id: 'playground-coordinator' }, text: 'whoami' }).subscribe(() => undefined);
        }),
    );
    expect(seen.slice(-2)).toEqual(['user: whoami', 'bot:  [card]']);
    await page.close();
  });

  it('carries on across a server restart with the page left open', async () => {
    const page = await open('management');
    const first = await ask(page, 'can staff use their personal phones to photograph pupils?');
    await expect.poll(() => first.innerText(), WAIT).toMatch(/version \d{4}/);
    const shownBefore = await cards(page).count();

    const port = new URL(running.url).port;
    const dataDir = running.dataDir;
    await running.app.close();
    await expect.poll(() => page.locator('#connection').textContent(), WAIT).toMatch(/Reconnecting|Connecting/);
    running = await startApp({ PORT: port }, { dataDir });
    await expect.poll(() => page.locator('#connection').textContent(), WAIT).toBe('Connected');

    // What was on the page stays; a new question is answered.
    expect(await cards(page).count()).toBe(shownBefore);
    const after = await ask(page, 'can kids use their mobiles in my lesson?');
    await expect.poll(() => after.innerText(), WAIT).toMatch(/Mobile (Phones )?and Personal Devices/i);
    await page.close();
  });

  it('loaded nothing from outside the server and broke no content-security rule', () => {
    expect(pageProblems).toEqual([]);
  });
});
