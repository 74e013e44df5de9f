/**
 * The evaluation interface, `esafety-bot answer --policies DIR`, exactly as other tools call it:
 * a child process, JSON lines in, JSON lines out. And the quality figures as regression guards.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnswerLine } from '../../src/commands/answer.ts';
import { runAnswerProcess, score, type EvalReport } from '../../src/commands/eval.ts';
import { repoRoot } from '../helpers/app.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';

const policies = path.join(repoRoot, 'policies');
const longQuestion = `can pupils use their phones ${'in the lesson and at break time '.repeat(160)}`.slice(0, 5000);

/** Each input line, and what the test knows about it. */
const inputs: Array<{ line: string; id: unknown; kind: 'question' | 'incident' | 'empty' }> = [
  { line: JSON.stringify({ id: 'phones', question: 'can kids use their mobiles in my lesson?' }), id: 'phones', kind: 'question' },
  { line: JSON.stringify({ id: 'empty', question: '' }), id: 'empty', kind: 'empty' },
  { line: JSON.stringify({ id: 'spaces', question: '   \t  ' }), id: 'spaces', kind: 'empty' },
  { line: JSON.stringify({ id: 'long', question: longQuestion }), id: 'long', kind: 'question' },
  { line: 'this line is not JSON {', id: null, kind: 'empty' },
  { line: JSON.stringify({ id: 'no-question' }), id: 'no-question', kind: 'empty' },
  { line: JSON.stringify({ id: 'number-question', question: 42 }), id: 'number-question', kind: 'empty' },
  { line: 'null', id: null, kind: 'empty' },
  { line: '[1, 2, 3]', id: null, kind: 'empty' },
  {
    line: JSON.stringify({ id: 'extra', question: 'how long does my password need to be', expect: ['x#y'], intent: 'incident', section: 'made-up#section', meta: { nested: [1, 2] } }),
    id: 'extra',
    kind: 'question',
  },
  { line: JSON.stringify({ id: 17, question: 'a pupil just told me someone online keeps asking her for photos' }), id: 17, kind: 'incident' },
  { line: JSON.stringify({ id: 'party', question: 'when is the staff christmas party' }), id: 'party', kind: 'question' },
  { line: JSON.stringify({ question: 'no id here: can staff use whatsapp with parents?' }), id: null, kind: 'question' },
  { line: JSON.stringify({ id: 'markup', question: '<script>alert(1)</script> [x](javascript:alert(1)) can pupils use **chatgpt**?' }), id: 'markup', kind: 'question' },
];

let cwd: string;
let result: CliResult;
let lines: AnswerLine[];

beforeAll(async () => {
  cwd = await mkdtemp(path.join(tmpdir(), 'esafety-answer-'));
  // One CRLF line ending among the LF ones, as a file saved on Windows would have.
  const input = `${inputs.map((i) => i.line).slice(0, 2).join('\r\n')}\n${inputs.map((i) => i.line).slice(2).join('\n')}\n`;
  result = await runCli(['answer', '--policies', policies], { cwd, input });
  lines = result.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AnswerLine);
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('esafety-bot answer', () => {
  it('exits 0 and writes exactly one JSON line per input line, in order', () => {
    expect(result.code).toBe(0);
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(result.stdout.split('\n').slice(0, -1)).toHaveLength(inputs.length);
    expect(lines.map((line) => line.id)).toEqual(inputs.map((i) => i.id));
  });

  it('prints nothing but those JSON lines on standard output', () => {
    for (const raw of result.stdout.split('\n').slice(0, -1)) {
      expect(raw.startsWith('{') && raw.endsWith('}')).toBe(true);
      expect(() => JSON.parse(raw)).not.toThrow();
    }
  });

  it('gives every line exactly the keys id, intent, abstained, section, confidence with the documented types', () => {
    for (const line of lines) {
      expect(Object.keys(line).sort()).toEqual(['abstained', 'confidence', 'id', 'intent', 'section']);
      expect(['question', 'incident']).toContain(line.intent);
      expect(typeof line.abstained).toBe('boolean');
      expect(line.section === null || typeof line.section === 'string').toBe(true);
      expect(typeof line.confidence).toBe('number');
      expect(line.confidence).toBeGreaterThanOrEqual(0);
      expect(line.confidence).toBeLessThanOrEqual(1);
    }
  });

  it('gives a section, as <file>#<slug>, exactly when it does not abstain on a question', () => {
    for (const line of lines.filter((l) => l.intent === 'question')) {
      expect(line.section === null, JSON.stringify(line)).toBe(line.abstained);
      if (line.section) expect(line.section).toMatch(/^[a-z0-9-]+#[a-z0-9-]+$/);
    }
  });

  it('abstains on empty, missing, non-string and non-JSON questions rather than guessing', () => {
    inputs.forEach((input, i) => {
      if (input.kind === 'empty') expect(lines[i], input.line).toMatchObject({ intent: 'question', abstained: true, section: null, confidence: 0 });
    });
  });

  it('answers a plain policy question from the pack, ignoring extra fields on the input', () => {
    expect(lines[0]).toMatchObject({ id: 'phones', intent: 'question', abstained: false });
    expect(lines[0]!.section).toMatch(/^mobile-and-personal-devices#/);
    const extra = lines[inputs.findIndex((i) => i.id === 'extra')]!;
    expect(extra).toMatchObject({ intent: 'question', abstained: false });
    expect(extra.section).toMatch(/^data-protection-and-passwords#/);
  });

  it('handles a 5,000-character question with one ordinary line', () => {
    expect(longQuestion).toHaveLength(5000);
    const long = lines[inputs.findIndex((i) => i.id === 'long')]!;
    expect(long.intent).toBe('question');
    expect(long.section === null).toBe(long.abstained);
  });

  it('treats a disclosure as an incident and names the procedure section it shows first', () => {
    const disclosure = lines[inputs.findIndex((i) => i.kind === 'incident')]!;
    expect(disclosure).toMatchObject({ id: 17, intent: 'incident', abstained: false });
    expect(disclosure.section).toMatch(/^[a-z0-9-]+#[a-z0-9-]+$/);
  });

  it('abstains on a question the pack does not cover', () => {
    expect(lines[inputs.findIndex((i) => i.id === 'party')]).toMatchObject({ intent: 'question', abstained: true, section: null });
  });

  it('warns about unusable lines on standard error, by line number', () => {
    expect(result.stderr).toMatch(/line 5: not JSON/);
    expect(result.stderr).toMatch(/line 6: no "question" string/);
  });

  it('needs no store: it leaves nothing behind in its working folder', async () => {
    expect(await readdir(cwd)).toEqual([]);
  });

  it('answers the same input the same way every time', async () => {
    const again = await runCli(['answer', '--policies', policies], { cwd, input: `${inputs.map((i) => i.line).join('\n')}\n` });
    expect(again.stdout).toBe(result.stdout);
  });

  it('with no input, writes nothing and exits 0', async () => {
    const empty = await runCli(['answer', '--policies', policies], { cwd, input: '' });
    expect(empty).toMatchObject({ code: 0, stdout: '' });
  });
});

/**
 * Quality floors: regression guards, not the targets (top-1 90%, abstention 80%, at most
 * 5% confidently wrong, incident recall 97%). Figures when these floors were set (npm run eval and
 * its heldout equivalent):
 *   eval/          top-1 46.3% (101/218), abstention 78.2% (43/55), confidently wrong 16.8%,
 *                  intent 100% (100/100), incident recall 100% (50/50)
 *   heldout        top-1 39.4% (37/94), abstention 86.4% (19/22), confidently wrong 19.8%,
 *                  intent 97.9% (47/48), incident recall 96.0% (24/25)
 * The floors sit a little below the lower of the two, so a change that makes either set worse
 * fails here; raise them as the method improves.
 */
const floors = { top1: 0.38, correctAbstention: 0.75, intent: 0.95, incidentRecall: 0.97, confidentlyWrongAtMost: 0.2 };

interface Labelled {
  id: string;
  question: string;
  expect?: string[];
  intent?: 'question' | 'incident';
}

async function readJsonLines(file: string): Promise<Labelled[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Labelled);
}

async function evaluate(policyDir: string, questionsFile: string, intentsFile: string): Promise<EvalReport> {
  const questions = await readJsonLines(questionsFile);
  const intents = await readJsonLines(intentsFile);
  return score(questions, intents, await runAnswerProcess(policyDir, [...questions, ...intents]));
}

describe.each([
  ['the project\'s labelled set', 'policies', 'eval/questions.jsonl', 'eval/intents.jsonl'],
  ['the held-out pack and questions', 'test/fixtures/heldout/policies', 'test/fixtures/heldout/questions.jsonl', 'test/fixtures/heldout/intents.jsonl'],
])('quality floors on %s', (_name, policyDir, questionsFile, intentsFile) => {
  let report: EvalReport;
  beforeAll(async () => {
    report = await evaluate(path.join(repoRoot, policyDir), path.join(repoRoot, questionsFile), path.join(repoRoot, intentsFile));
  });

  it('has a labelled set of a meaningful size', () => {
    expect(report.answerable).toBeGreaterThan(50);
    expect(report.unanswerable).toBeGreaterThan(10);
    expect(report.intentTotal).toBeGreaterThan(40);
    expect(report.incidentTotal).toBeGreaterThan(20);
  });

  it(`keeps intent accuracy at or above ${floors.intent}`, () => {
    expect(report.intentCorrect / report.intentTotal).toBeGreaterThanOrEqual(floors.intent);
  });

  it(`keeps incident recall at or above ${floors.incidentRecall}`, () => {
    expect(report.incidentFound / report.incidentTotal).toBeGreaterThanOrEqual(floors.incidentRecall);
  });

  it(`keeps correct abstention at or above ${floors.correctAbstention}`, () => {
    expect(report.correctAbstention / report.unanswerable).toBeGreaterThanOrEqual(floors.correctAbstention);
  });

  it(`keeps top-1 on answerable questions at or above ${floors.top1}`, () => {
    expect(report.top1 / report.answerable).toBeGreaterThanOrEqual(floors.top1);
  });

  it(`keeps the confidently-wrong rate at or below ${floors.confidentlyWrongAtMost}`, () => {
    expect(report.confidentlyWrong / (report.answerable + report.unanswerable)).toBeLessThanOrEqual(floors.confidentlyWrongAtMost);
  });
});
