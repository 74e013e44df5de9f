/**
 * `npm run eval`: runs the `answer` command, exactly as other tools call it, over the labelled
 * questions and intent messages, and prints the figures the knowledge-base issue sets targets for.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { AnswerLine } from './answer.ts';

interface Labelled {
  id: string;
  question: string;
  expect?: string[];
  intent?: 'question' | 'incident';
}

export interface EvalReport {
  answerable: number;
  top1: number;
  unanswerable: number;
  correctAbstention: number;
  confidentlyWrong: number;
  intentTotal: number;
  intentCorrect: number;
  incidentTotal: number;
  incidentFound: number;
  mistakes: string[];
}

async function readJsonLines(file: string): Promise<Labelled[]> {
  const raw = await readFile(file, 'utf8');
  return raw
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Labelled);
}

const binPath = fileURLToPath(new URL('../../bin/esafety-bot.mjs', import.meta.url));

/** Pipes the messages through `esafety-bot answer` in a child process and parses its lines. */
export async function runAnswerProcess(policies: string, items: Labelled[]): Promise<Map<string, AnswerLine>> {
  const child = spawn(process.execPath, [binPath, 'answer', '--policies', policies], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  for (const item of items) child.stdin.write(JSON.stringify({ id: item.id, question: item.question }) + '\n');
  child.stdin.end();
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  if (code !== 0) throw new Error(`esafety-bot answer exited with ${code}`);
  const answers = new Map<string, AnswerLine>();
  for (const line of output.split('\n').filter(Boolean)) {
    const answer = JSON.parse(line) as AnswerLine;
    answers.set(String(answer.id), answer);
  }
  return answers;
}

export function score(questions: Labelled[], intents: Labelled[], answers: Map<string, AnswerLine>): EvalReport {
  const report: EvalReport = { answerable: 0, top1: 0, unanswerable: 0, correctAbstention: 0, confidentlyWrong: 0, intentTotal: 0, intentCorrect: 0, incidentTotal: 0, incidentFound: 0, mistakes: [] };
  for (const q of questions) {
    const answer = answers.get(q.id);
    if (!answer) throw new Error(`no answer for ${q.id}`);
    const expect = q.expect ?? [];
    if (expect.length > 0) {
      report.answerable++;
      if (!answer.abstained && answer.section && expect.includes(answer.section)) report.top1++;
      else if (!answer.abstained) {
        report.confidentlyWrong++;
        report.mistakes.push(`WRONG   ${q.id} ${answer.confidence.toFixed(2)} ${answer.section} (want ${expect.join('|')}): ${q.question}`);
      } else report.mistakes.push(`ABSTAIN ${q.id} ${answer.confidence.toFixed(2)} (want ${expect.join('|')}): ${q.question}`);
    } else {
      report.unanswerable++;
      if (answer.abstained) report.correctAbstention++;
      else {
        report.confidentlyWrong++;
        report.mistakes.push(`ANSWERED ${q.id} ${answer.confidence.toFixed(2)} ${answer.section}: ${q.question}`);
      }
    }
  }
  for (const m of intents) {
    const answer = answers.get(m.id);
    if (!answer || !m.intent) continue;
    report.intentTotal++;
    if (answer.intent === m.intent) report.intentCorrect++;
    else report.mistakes.push(`INTENT  ${m.id} got ${answer.intent} want ${m.intent}: ${m.question}`);
    if (m.intent === 'incident') {
      report.incidentTotal++;
      if (answer.intent === 'incident') report.incidentFound++;
    }
  }
  return report;
}

const percent = (n: number, d: number) => (d === 0 ? 'n/a' : `${((100 * n) / d).toFixed(1)}%`);

export function formatReport(name: string, r: EvalReport): string {
  const total = r.answerable + r.unanswerable;
  return [
    `${name}:`,
    `  top-1 on answerable       ${percent(r.top1, r.answerable)} (${r.top1}/${r.answerable})`,
    `  correct abstention        ${percent(r.correctAbstention, r.unanswerable)} (${r.correctAbstention}/${r.unanswerable})`,
    `  confidently wrong         ${percent(r.confidentlyWrong, total)} (${r.confidentlyWrong}/${total})`,
    `  intent accuracy           ${percent(r.intentCorrect, r.intentTotal)} (${r.intentCorrect}/${r.intentTotal})`,
    `  incident recall           ${percent(r.incidentFound, r.incidentTotal)} (${r.incidentFound}/${r.incidentTotal})`,
  ].join('\n');
}

export async function runEvalCommand(options: { policies: string; labelled: string; intents?: string; verbose: boolean; out: (line: string) => void }): Promise<number> {
  const questions = await readJsonLines(options.labelled);
  const intents = options.intents ? await readJsonLines(options.intents) : [];
  const answers = await runAnswerProcess(options.policies, [...questions, ...intents]);
  const report = score(questions, intents, answers);
  if (options.verbose) for (const line of report.mistakes) options.out(line);
  options.out(formatReport(options.labelled, report));
  return 0;
}
