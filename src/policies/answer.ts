/**
 * From a message to what the bot should show: the intent, and the section that answers it (or,
 * for a report, the procedure section whose steps come first), with a confidence. One function
 * serves the chat, the `answer` command and the evaluation, so what is measured is what ships.
 */
import { classifyIntent, type Intent } from './intent.ts';
import { DEFAULT_THRESHOLD, type PolicyIndex, type SearchHit } from './search.ts';

export interface AnswerDecision {
  intent: Intent;
  abstained: boolean;
  hit?: SearchHit;
  confidence: number;
}

export function decideAnswer(index: PolicyIndex, message: string, threshold = DEFAULT_THRESHOLD): AnswerDecision {
  const { intent } = classifyIntent(message);
  if (intent === 'incident') {
    // The guidance shown first: the section that confidently matches this report (a lost device,
    // a phishing email) if there is one, otherwise the best-matching incident procedure section.
    const hit = index.search(message, { preferProcedure: true });
    if (hit && hit.confidence >= threshold) return { intent, abstained: false, hit, confidence: hit.confidence };
    const procedureHit = hit?.section.procedure ? hit : firstProcedureHit(index, hit);
    if (procedureHit) return { intent, abstained: false, hit: procedureHit, confidence: procedureHit.confidence };
    return { intent, abstained: true, hit, confidence: hit?.confidence ?? 0 };
  }
  const hit = index.search(message);
  if (!hit || hit.confidence < threshold) return { intent, abstained: true, hit, confidence: hit?.confidence ?? 0 };
  return { intent, abstained: false, hit, confidence: hit.confidence };
}

/** When the best match is not a procedure section, the best-ranked one that is, or the first in the pack. */
function firstProcedureHit(index: PolicyIndex, hit: SearchHit | undefined): SearchHit | undefined {
  const ranked = hit?.alternatives.find((alternative) => alternative.section.procedure);
  if (ranked) return { section: ranked.section, score: ranked.score, confidence: hit!.confidence, alternatives: [] };
  for (const section of index.sections.values()) {
    if (section.procedure) return { section, score: 0, confidence: 0.5, alternatives: [] };
  }
  return undefined;
}
