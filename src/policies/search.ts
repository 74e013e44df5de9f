/**
 * Retrieval over policy sections: BM25+ ranking by MiniSearch over the section heading, its
 * context (document title, parent heading) and body, with the shared term pipeline (text.ts),
 * typo tolerance and boosted headings.
 *
 * The confidence is not a BM25 score (that scale changes with every pack). It is a logistic model
 * over features that mean the same on any pack: how much of the question's information (IDF mass)
 * the best section covers, whether the heading itself matches, and how far ahead of the runner-up
 * it is. Below `threshold` the bot abstains rather than answer wrongly.
 */
import MiniSearch, { type SearchResult } from 'minisearch';
import { expandQuery, processTerm, terms, tokenize } from './text.ts';

export interface IndexedSection {
  id: string;
  docId: string;
  docTitle: string;
  heading: string;
  parentHeading?: string;
  text: string;
  /** Version label of the document the section came from. */
  version: string;
  /** Sections from an incident or reporting procedure, preferred when the message is a report. */
  procedure?: boolean;
}

export interface SearchHit {
  section: IndexedSection;
  score: number;
  confidence: number;
  /** Runner-up sections, for "did you mean" and for tests. */
  alternatives: Array<{ section: IndexedSection; score: number }>;
}

export interface SearchOptions {
  /** Prefer procedure sections (reports and disclosures). */
  preferProcedure?: boolean;
}

/** Confidence at or above which the bot answers. Chosen on the labelled set; see docs/knowledge-base.md. */
export const DEFAULT_THRESHOLD = 0.6;

/**
 * Logistic weights over pack-independent features, fitted by scripts/kb-diagnose.ts --fit on two
 * independently written packs at once, so the confidence estimates P(the section is right).
 */
export const confidenceModel = {
  bias: -2.64,
  coverage: 1.05,
  headingCoverage: 0.42,
  margin: 2.99,
  unknownShare: -0.91,
  matched: 1.97,
};

interface Features {
  /** Distinct typed terms the best section contains, as a share of four (more adds nothing). */
  matched: number;
  coverage: number;
  headingCoverage: number;
  margin: number;
  unknownShare: number;
}

export function confidenceFrom(features: Features, model = confidenceModel): number {
  const z =
    model.bias +
    model.coverage * features.coverage +
    model.headingCoverage * features.headingCoverage +
    model.margin * features.margin +
    model.unknownShare * features.unknownShare +
    model.matched * features.matched;
  return 1 / (1 + Math.exp(-z));
}

/** Ranking parameters, chosen by a grid search over two independently written packs (scripts/kb-diagnose.ts). */
export const rankingTuning = {
  boost: { heading: 1.2, context: 0.7, body: 1.0 },
  fuzzyWeight: 0.45,
  expansionWeight: 0.4,
  prefixWeight: 0.3,
  bm25: { k: 1.8, b: 0.3, d: 0.5 },
};
export type RankingTuning = typeof rankingTuning;

export class PolicyIndex {
  readonly sections: ReadonlyMap<string, IndexedSection>;
  readonly #search: MiniSearch<IndexedSection & { context: string; body: string }>;
  readonly #documentFrequency = new Map<string, number>();
  readonly #headingTerms = new Map<string, Set<string>>();
  readonly #sectionTerms = new Map<string, Set<string>>();
  readonly #count: number;

  readonly #tuning: RankingTuning;

  constructor(sections: IndexedSection[], tuning: RankingTuning = rankingTuning) {
    this.#tuning = tuning;
    this.sections = new Map(sections.map((section) => [section.id, section]));
    this.#count = sections.length;
    this.#search = new MiniSearch({
      idField: 'id',
      fields: ['heading', 'context', 'body'],
      storeFields: [],
      tokenize,
      processTerm: (term) => processTerm(term) ?? null,
      searchOptions: { combineWith: 'OR' },
    });
    this.#search.addAll(
      sections.map((section) => ({
        ...section,
        context: [section.docTitle, section.parentHeading].filter(Boolean).join(' '),
        body: section.text,
      })),
    );
    for (const section of sections) {
      const all = new Set([...terms(section.heading), ...terms(section.parentHeading ?? ''), ...terms(section.docTitle), ...terms(section.text)]);
      this.#sectionTerms.set(section.id, all);
      this.#headingTerms.set(section.id, new Set(terms(section.heading)));
      for (const term of all) this.#documentFrequency.set(term, (this.#documentFrequency.get(term) ?? 0) + 1);
    }
  }

  get size(): number {
    return this.#count;
  }

  /** Inverse document frequency in BM25's form; a term no section contains gets the maximum. */
  #idf(term: string): number {
    const df = this.#documentFrequency.get(term) ?? 0;
    return Math.log(1 + (this.#count - df + 0.5) / (df + 0.5));
  }

  search(question: string, options: SearchOptions = {}): SearchHit | undefined {
    const ranked = this.#rank(question, options);
    if (!ranked) return undefined;
    const { queryTerms, results } = ranked;
    const [top, second] = results;
    return {
      section: this.sections.get(top!.id as string)!,
      score: top!.score,
      confidence: confidenceFrom(this.#features(queryTerms, top!, second)),
      alternatives: results.slice(1, 4).map((r) => ({ section: this.sections.get(r.id as string)!, score: r.score })),
    };
  }

  /** The features the confidence is computed from, exposed for the evaluation's fitting. */
  explain(question: string, options: SearchOptions = {}): Features | undefined {
    const ranked = this.#rank(question, options);
    return ranked && this.#features(ranked.queryTerms, ranked.results[0]!, ranked.results[1]);
  }

  #rank(question: string, options: SearchOptions): { queryTerms: string[]; results: SearchResult[] } | undefined {
    const queryTerms = [...new Set(terms(question))];
    if (queryTerms.length === 0 || this.#count === 0) return undefined;
    // Implied policy words join the query at a lower weight than the words actually typed.
    const typed = new Set(queryTerms);
    const expansion = expandQuery(question);
    const results = this.#search.search(expansion ? `${question} ${expansion}` : question, {
      boostTerm: (term) => (typed.has(term) ? 1 : this.#tuning.expansionWeight),
      boost: this.#tuning.boost,
      bm25: this.#tuning.bm25,
      fuzzy: (term) => (term.length >= 5 ? 0.2 : false),
      prefix: (term) => term.length >= 4,
      weights: { fuzzy: this.#tuning.fuzzyWeight, prefix: this.#tuning.prefixWeight },
      boostDocument: options.preferProcedure ? (id) => (this.sections.get(id as string)?.procedure ? 1.6 : 1) : undefined,
    });
    return results.length > 0 ? { queryTerms, results } : undefined;
  }

  #features(queryTerms: string[], top: SearchResult, second: SearchResult | undefined): Features {
    const sectionTerms = this.#sectionTerms.get(top.id as string) ?? new Set<string>();
    const headingTerms = this.#headingTerms.get(top.id as string) ?? new Set<string>();
    const matchedQueryTerms = new Set(top.queryTerms);
    let total = 0;
    let covered = 0;
    let headingCovered = 0;
    let unknown = 0;
    let matched = 0;
    for (const term of queryTerms) {
      if (sectionTerms.has(term)) matched++;
      const idf = this.#idf(term);
      total += idf;
      if (sectionTerms.has(term)) covered += idf;
      else if (matchedQueryTerms.has(term)) covered += idf * 0.6; // fuzzy or prefix match: partial credit
      if (headingTerms.has(term)) headingCovered += idf;
      if (!this.#documentFrequency.has(term) && !matchedQueryTerms.has(term)) unknown += 1;
    }
    return {
      coverage: total > 0 ? covered / total : 0,
      headingCoverage: total > 0 ? headingCovered / total : 0,
      margin: second ? (top.score - second.score) / top.score : 1,
      unknownShare: unknown / queryTerms.length,
      matched: Math.min(matched, 4) / 4,
    };
  }
}
