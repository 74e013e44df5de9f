/**
 * PolicyIndex remembers per-term work between questions (src/policies/search.ts) to save CPU. It must
 * change nothing: for every labelled question of both packs, asked several times over in different
 * orders (so the remembered work is used), every result is identical to the bit to what an index that
 * remembers nothing gives: the section, score and confidence, the runners-up and their scores, the
 * features, with and without the preference for procedure sections, and the answer decision.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decideAnswer } from '../../src/policies/answer.ts';
import { loadPolicyDirectory, sectionsForIndex } from '../../src/policies/load.ts';
import { PolicyIndex, rankingTuning } from '../../src/policies/search.ts';
import { repoRoot } from '../helpers/app.ts';

async function questionsOf(...files: string[]): Promise<string[]> {
  const lines = (await Promise.all(files.map((file) => readFile(path.join(repoRoot, file), 'utf8')))).join('\n').split('\n').filter((line) => line.trim());
  return lines.map((line) => (JSON.parse(line) as { question: string }).question);
}

/** Everything a search gives, as plain data (numbers compared exactly). */
function everything(index: PolicyIndex, question: string) {
  const hit = (preferProcedure: boolean) => {
    const found = index.search(question, { preferProcedure });
    return found && { section: found.section.id, score: found.score, confidence: found.confidence, alternatives: found.alternatives.map((a) => [a.section.id, a.score]) };
  };
  const decision = decideAnswer(index, question);
  return { plain: hit(false), procedures: hit(true), features: index.explain(question) ?? null, decision: { ...decision, hit: decision.hit?.section.id } };
}

const packs = [
  { name: 'the sample pack', dir: 'policies', questions: ['eval/questions.jsonl', 'eval/intents.jsonl'] },
  { name: 'the held-out pack', dir: 'test/fixtures/heldout/policies', questions: ['test/fixtures/heldout/questions.jsonl', 'test/fixtures/heldout/intents.jsonl'] },
];

describe('remembering per-term work changes no search result', () => {
  for (const pack of packs) {
    it(`on ${pack.name}, every labelled question, asked three times in different orders`, async () => {
      const sections = sectionsForIndex((await loadPolicyDirectory(path.join(repoRoot, pack.dir))).documents);
      const questions = [...(await questionsOf(...pack.questions)), 'guest wifi?', 'passwrds lenght', 'smartwatchs in exam', 'xyzzy', 'the', ''];
      const reference = new PolicyIndex(sections, rankingTuning, { remember: false });
      const expected = new Map(questions.map((question) => [question, everything(reference, question)]));
      const remembering = new PolicyIndex(sections);
      for (const order of [questions, [...questions].reverse(), [...questions, ...questions]]) {
        for (const question of order) expect(everything(remembering, question), question).toEqual(expected.get(question));
      }
    });
  }
});
