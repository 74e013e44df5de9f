/**
 * Development tool for the knowledge base: ranking accuracy regardless of the threshold, the
 * confidence features of every labelled question, and a logistic fit of the confidence model.
 *
 *   node --import tsx scripts/kb-diagnose.ts PACK_DIR QUESTIONS.jsonl [PACK_DIR QUESTIONS.jsonl ...] [--fit] [--show]
 *
 * Fitting across several packs at once is the point: the model must mean the same on any pack.
 */
import { readFileSync } from 'node:fs';
import { loadPolicyDirectory, sectionsForIndex } from '../src/policies/load.ts';
import { PolicyIndex, confidenceFrom, confidenceModel } from '../src/policies/search.ts';

const args = process.argv.slice(2);
const fit = args.includes('--fit');
const show = args.includes('--show');
const pairs = args.filter((a) => !a.startsWith('--'));

type Row = { x: number[]; y: number; answerable: boolean; correctRank: boolean; text: string; got?: string; want: string[] };
const rows: Row[] = [];
const featureNames = ['coverage', 'headingCoverage', 'margin', 'unknownShare', 'matched'] as const;

for (let i = 0; i < pairs.length; i += 2) {
  const loaded = await loadPolicyDirectory(pairs[i]!);
  const index = new PolicyIndex(sectionsForIndex(loaded.documents));
  const questions = readFileSync(pairs[i + 1]!, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; question: string; expect: string[] });
  let answerable = 0;
  let rankTop1 = 0;
  let rankTop3 = 0;
  for (const q of questions) {
    const hit = index.search(q.question);
    const features = index.explain(q.question);
    const top = hit?.section.id;
    const correct = !!top && q.expect.includes(top);
    if (q.expect.length) {
      answerable++;
      if (correct) rankTop1++;
      if (correct || hit?.alternatives.slice(0, 2).some((a) => q.expect.includes(a.section.id))) rankTop3++;
      if (show && !correct) console.log(`MISS ${q.id} got ${top} want ${q.expect.join('|')}: ${q.question}`);
    }
    rows.push({
      x: features ? featureNames.map((n) => features[n]) : [0, 0, 0, 1, 0],
      y: correct ? 1 : 0,
      answerable: q.expect.length > 0,
      correctRank: correct,
      text: q.question,
      got: top,
      want: q.expect,
    });
  }
  console.log(`${pairs[i]}: ranking top-1 ${((100 * rankTop1) / answerable).toFixed(1)}% top-3 ${((100 * rankTop3) / answerable).toFixed(1)}% of ${answerable} answerable, ${index.size} sections`);
}

function evaluate(model: typeof confidenceModel, threshold: number) {
  let tp = 0, answerable = 0, abst = 0, unans = 0, wrong = 0;
  for (const r of rows) {
    const c = confidenceFrom(Object.fromEntries(featureNames.map((n, i) => [n, r.x[i]])) as never, model);
    const answered = c >= threshold;
    if (r.answerable) {
      answerable++;
      if (answered && r.correctRank) tp++;
      else if (answered) wrong++;
    } else {
      unans++;
      if (!answered) abst++;
      else wrong++;
    }
  }
  return { top1: tp / answerable, abstention: abst / unans, wrong: wrong / rows.length };
}

console.log('current model', JSON.stringify(evaluate(confidenceModel, 0.5)));

if (fit) {
  // Plain logistic regression by gradient descent with a little L2; y = "answering would be right".
  const w = featureNames.map(() => 0);
  let b = 0;
  const lr = 0.5;
  for (let epoch = 0; epoch < 5000; epoch++) {
    const gw = featureNames.map(() => 0);
    let gb = 0;
    for (const r of rows) {
      const z = b + r.x.reduce((s, v, i) => s + v * w[i]!, 0);
      const p = 1 / (1 + Math.exp(-z));
      const err = p - r.y;
      gb += err;
      r.x.forEach((v, i) => (gw[i]! += err * v));
    }
    b -= (lr * gb) / rows.length;
    w.forEach((_, i) => (w[i]! -= lr * (gw[i]! / rows.length + 0.001 * w[i]!)));
  }
  const model = { bias: b, ...Object.fromEntries(featureNames.map((n, i) => [n, w[i]!])) } as typeof confidenceModel;
  console.log('fitted', JSON.stringify(Object.fromEntries(Object.entries(model).map(([k, v]) => [k, Math.round(v * 100) / 100]))));
  for (const t of [0.3, 0.4, 0.5, 0.6, 0.7]) console.log(`  threshold ${t}`, JSON.stringify(evaluate(model, t)));
}
