/**
 * `esafety-bot answer --policies DIR`: the evaluation interface. JSON lines in
 * (`{"id", "question"}`), one JSON line out per input:
 * `{"id", "intent", "abstained", "section", "confidence"}`. Needs no server and no store, and
 * prints nothing else on standard output.
 */
import { createInterface } from 'node:readline';
import { decideAnswer } from '../policies/answer.ts';
import { loadPolicyDirectory, sectionsForIndex } from '../policies/load.ts';
import { PolicyIndex } from '../policies/search.ts';

export interface AnswerLine {
  id: unknown;
  intent: 'question' | 'incident';
  abstained: boolean;
  section: string | null;
  confidence: number;
}

export async function buildIndexFromDirectory(dir: string, warn: (line: string) => void): Promise<PolicyIndex> {
  const loaded = await loadPolicyDirectory(dir);
  for (const error of loaded.errors) warn(`policy not loaded: ${error}`);
  return new PolicyIndex(sectionsForIndex(loaded.documents));
}

export function answerOne(index: PolicyIndex, id: unknown, question: string): AnswerLine {
  const decision = decideAnswer(index, question);
  return {
    id,
    intent: decision.intent,
    abstained: decision.abstained,
    section: decision.abstained ? null : (decision.hit?.section.id ?? null),
    confidence: Math.round(decision.confidence * 1000) / 1000,
  };
}

export async function runAnswerCommand(options: { policies: string; input: NodeJS.ReadableStream; output: NodeJS.WritableStream; warn: (line: string) => void }): Promise<number> {
  const index = await buildIndexFromDirectory(options.policies, options.warn);
  const lines = createInterface({ input: options.input, crlfDelay: Infinity });
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      // Still one output line per input line, so answers stay aligned with questions.
      options.warn(`line ${lineNumber}: not JSON; answered as an abstention with id null`);
      parsed = {};
    }
    const record = (parsed && typeof parsed === 'object' ? parsed : {}) as { id?: unknown; question?: unknown };
    const question = typeof record.question === 'string' ? record.question : '';
    if (typeof record.question !== 'string' && Object.keys(record).length > 0) options.warn(`line ${lineNumber}: no "question" string; answered as an abstention`);
    options.output.write(JSON.stringify(answerOne(index, record.id ?? null, question)) + '\n');
  }
  return 0;
}
