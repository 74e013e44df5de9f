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
import MiniSearch, { type SearchOptions as MiniSearchOptions, type SearchResult } from 'minisearch';
import { expandQuery, processTerm, terms, tokenize } from './text.ts';

type IndexedDocument = IndexedSection & { context: string; body: string };

/** Typo tolerance and prefix matching for a query term (the same functions on every search). */
const fuzzyFor = (term: string): number | false => (term.length >= 5 ? 0.2 : false);
const prefixFor = (term: string): boolean => term.length >= 4;
type TermIndex = MiniSearch<IndexedDocument>['_index'];
type FieldTermData = NonNullable<ReturnType<TermIndex['get']>>;

/** Distinct query terms remembered per index (their prefix and typo expansions); past this the memory starts again. */
const EXPANSION_MEMO_LIMIT = 20_000;
/** (Term, section) results remembered per index, about 200 bytes each; past this the memory starts again. */
const TERM_RESULT_MEMO_LIMIT = 100_000;

/**
 * MiniSearch over a fixed set of sections, made cheaper per question without changing a result.
 *
 * Nothing is added after indexing, so what a query term contributes depends only on the term (and
 * the search options, which are the same on every search): the index terms it reaches by prefix or
 * by typo tolerance (MiniSearch walks its radix tree for each, on every search) and the scores they
 * give each section. Both are remembered per term. What is remembered is exactly what MiniSearch
 * computed, in the same order, so every sum is made of the same numbers in the same order: scores
 * and ranking are unchanged to the last bit (test/policies/search-memo.test.ts compares every
 * labelled question with and without). A question needs only the best few sections, so `best`
 * keeps those instead of building and sorting a result for every section. If a MiniSearch release
 * no longer has the internals used here, the search simply runs as MiniSearch's own.
 */
class SectionSearch extends MiniSearch<IndexedDocument> {
  /** Call once every section is added; adding or removing documents afterwards is not supported. */
  rememberTermExpansions(): void {
    const terms: TermIndex = this._index;
    if (typeof terms?.fuzzyGet !== 'function' || typeof terms.atPrefix !== 'function') return;
    const walkFuzzy = terms.fuzzyGet.bind(terms);
    const walkPrefix = terms.atPrefix.bind(terms);
    const fuzzy = new Map<string, Array<[string, [FieldTermData, number]]>>();
    const prefix = new Map<string, Array<[string, FieldTermData]>>();
    terms.fuzzyGet = (key: string, maxEditDistance: number) => {
      const memoKey = `${maxEditDistance}\u0000${key}`;
      let entries = fuzzy.get(memoKey);
      if (!entries) {
        if (fuzzy.size >= EXPANSION_MEMO_LIMIT) fuzzy.clear();
        entries = [...walkFuzzy(key, maxEditDistance)];
        fuzzy.set(memoKey, entries);
      }
      // A fresh Map each time: MiniSearch deletes from it the terms it scores as prefix matches.
      return new Map(entries);
    };
    // MiniSearch only iterates what atPrefix returns (when searching): the remembered entries serve.
    terms.atPrefix = ((key: string) => {
      let entries = prefix.get(key);
      if (!entries) {
        if (prefix.size >= EXPANSION_MEMO_LIMIT) prefix.clear();
        entries = [...walkPrefix(key)];
        prefix.set(key, entries);
      }
      return entries;
    }) as unknown as TermIndex['atPrefix'];
  }

  #variantOf?: (options: Record<string, unknown>) => string | undefined;
  readonly #termResults = new Map<string, TermScores>();
  readonly #askedOnce = new Set<string>();
  #remembered = 0;

  /**
   * From now on, `best` remembers what each query term scores (MiniSearch's per-term result:
   * section, score, matched terms) for the searches `variantOf` recognises (it names the options a
   * search was made with, or returns undefined for options it does not know: those searches are
   * simply MiniSearch's).
   */
  rememberTermResults(variantOf: (options: Record<string, unknown>) => string | undefined): void {
    const internals = this as unknown as Partial<SearchInternals>;
    if (typeof internals.executeQuerySpec !== 'function' || !(internals._documentIds instanceof Map) || typeof internals._options?.tokenize !== 'function') return;
    this.#variantOf = variantOf;
  }

  /**
   * The first `count` results of `search(query, options)`, the same to the bit, for what PolicyIndex
   * reads of them (id, score, query terms). MiniSearch searches term by term, adds the terms' results
   * together in the first term's objects, then builds and sorts a result for every section reached
   * (on a small pack, nearly all of them). Here the terms' results come from what is remembered, are
   * added into a fresh total per section (MiniSearch's OR step for step: the same sums in the same
   * order, sections in the same order) and only the best few are kept, in the order a stable sort by
   * score would give. test/policies/search-memo.test.ts compares both on every labelled question.
   */
  best(query: string, searchOptions: MiniSearchOptions, count: number): Ranked[] {
    const internals = this as unknown as SearchInternals;
    const options = { tokenize: internals._options?.tokenize, processTerm: internals._options?.processTerm, ...internals._options?.searchOptions, ...searchOptions };
    const variant = this.#variantOf && String(options.combineWith ?? 'or').toLowerCase() === 'or' && options.filter == null ? this.#variantOf(options) : undefined;
    if (variant === undefined) return this.search(query, searchOptions).slice(0, count);

    // MiniSearch's executeQuery for a query string: its terms, then one query spec per term.
    const terms = options.tokenize!(query).flatMap((term) => options.processTerm!(term)).filter((term): term is string => !!term);
    // Indexed by MiniSearch's short document ids (small integers); `reached` keeps the order in which
    // sections were first reached, which is the order MiniSearch's results come in before sorting.
    const scores: number[] = [];
    const matched: string[][] = [];
    const reached: number[] = [];
    terms.forEach((term, i) => {
      const spec: QuerySpec = {
        term,
        fuzzy: typeof options.fuzzy === 'function' ? options.fuzzy(term, i, terms) : options.fuzzy || false,
        prefix: typeof options.prefix === 'function' ? options.prefix(term, i, terms) : options.prefix === true,
        termBoost: typeof options.boostTerm === 'function' ? options.boostTerm(term, i, terms) : 1,
      };
      const results = this.#resultsOf(variant, spec, options);
      for (let r = 0; r < results.docIds.length; r++) {
        const docId = results.docIds[r]!;
        const sectionTerms = matched[docId];
        if (sectionTerms === undefined) {
          reached.push(docId);
          scores[docId] = results.scores[r]!;
          matched[docId] = results.terms[r]!.slice();
          continue;
        }
        scores[docId] = scores[docId]! + results.scores[r]!;
        for (const queryTerm of results.terms[r]!) if (!sectionTerms.includes(queryTerm)) sectionTerms.push(queryTerm);
      }
    });

    const kept: Ranked[] = [];
    for (const docId of reached) {
      const sectionTerms = matched[docId]!;
      const score = scores[docId]! * (sectionTerms.length || 1);
      // After every kept result scoring at least as much: a stable sort keeps ties in this order.
      let at = kept.length;
      while (at > 0 && kept[at - 1]!.score < score) at--;
      if (at >= count) continue;
      kept.splice(at, 0, { id: internals._documentIds.get(docId), score, queryTerms: sectionTerms });
      if (kept.length > count) kept.pop();
    }
    return kept;
  }

  /** One query term's results (MiniSearch's, in its order), remembered; never changed by the caller. */
  #resultsOf(variant: string, spec: QuerySpec, options: Record<string, unknown>): TermScores {
    const key = `${variant}\u0000${spec.term}\u0000${spec.fuzzy}\u0000${spec.prefix}\u0000${spec.termBoost}`;
    const known = this.#termResults.get(key);
    if (known) return known;
    const results: TermScores = { docIds: [], scores: [], terms: [] };
    for (const [docId, result] of (this as unknown as SearchInternals).executeQuerySpec(spec, options)) {
      results.docIds.push(docId);
      results.scores.push(result.score);
      results.terms.push(result.terms);
    }
    // A term seen for the first time is not kept: most one-off terms are never asked again.
    if (!this.#askedOnce.has(key)) {
      if (this.#askedOnce.size >= EXPANSION_MEMO_LIMIT) this.#askedOnce.clear();
      this.#askedOnce.add(key);
      return results;
    }
    if (this.#remembered + results.docIds.length > TERM_RESULT_MEMO_LIMIT) {
      this.#termResults.clear();
      this.#remembered = 0;
    }
    this.#termResults.set(key, results);
    this.#remembered += results.docIds.length;
    return results;
  }
}

/** What PolicyIndex reads of a search result. */
type Ranked = Pick<SearchResult, 'id' | 'score' | 'queryTerms'>;
type QuerySpec = { term: string; fuzzy: boolean | number; prefix: boolean; termBoost: number };
type TermResults = Map<number, { score: number; terms: string[]; match: Record<string, string[]> }>;
/** A term's results as parallel arrays (section, score, query terms matched), in MiniSearch's order. */
type TermScores = { docIds: number[]; scores: number[]; terms: string[][] };
/** The MiniSearch internals `best` builds on (checked once, in rememberTermResults). */
interface SearchInternals {
  executeQuerySpec(query: QuerySpec, options: Record<string, unknown>): TermResults;
  _documentIds: Map<number, unknown>;
  _options: { tokenize: (text: string) => string[]; processTerm: (term: string) => string | string[] | null | undefined | false; searchOptions: MiniSearchOptions };
}

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
export const confidenceModel: ConfidenceModel = {
  bias: -2.8,
  coverage: 0.3,
  margin: 1.83,
  unknownShare: -0.85,
  matched: 1.65,
  proximity: 2.23,
  margin3: 1.66,
};

interface Features {
  /** Distinct typed terms the best section contains, as a share of four (more adds nothing). */
  matched: number;
  coverage: number;
  headingCoverage: number;
  margin: number;
  unknownShare: number;
  /**
   * Share of the question's neighbouring term pairs (IDF-weighted) that also stand within a few
   * words of each other in the section: "personal phone" answered by a sentence about personal
   * phones, not by a section that says "personal" in one place and "phone" in another.
   */
  proximity: number;
  /** Lead of the best section over the third, as a share of its score (a three-way tie is no answer). */
  margin3: number;
}

/** Two question terms count as near each other within this many section terms (stop words left out). */
const PROXIMITY_WINDOW = 4;

/** Whether `a` and `b` occur within `window` positions of each other, in either order. */
function occurNear(sequence: readonly string[], a: string, b: string, window: number): boolean {
  let lastA = -Infinity;
  let lastB = -Infinity;
  for (let i = 0; i < sequence.length; i++) {
    if (sequence[i] === a) {
      if (i - lastB <= window) return true;
      lastA = i;
    } else if (sequence[i] === b) {
      if (i - lastA <= window) return true;
      lastB = i;
    }
  }
  return false;
}

export type ConfidenceModel = Partial<Record<keyof Features | 'bias', number>>;

export function confidenceFrom(features: Features, model: ConfidenceModel = confidenceModel): number {
  let z = model.bias ?? 0;
  for (const name of Object.keys(features) as Array<keyof Features>) z += (model[name] ?? 0) * features[name];
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
  readonly #search: SectionSearch;
  readonly #documentFrequency = new Map<string, number>();
  readonly #headingTerms = new Map<string, Set<string>>();
  readonly #sectionTerms = new Map<string, Set<string>>();
  /** Each section's terms in order (heading, then body), for the proximity of matched terms. */
  readonly #sequences = new Map<string, string[]>();
  readonly #count: number;

  readonly #tuning: RankingTuning;
  /** The options every search passes (the same objects each time, so remembered term results can be recognised). */
  readonly #searchOptions: { boost: RankingTuning['boost']; bm25: RankingTuning['bm25']; weights: { fuzzy: number; prefix: number } };
  readonly #boostProcedures = (id: unknown): number => (this.sections.get(id as string)?.procedure ? 1.6 : 1);

  /** `remember: false` searches with MiniSearch's own search, remembering nothing (for the test that proves remembering changes nothing). */
  constructor(sections: IndexedSection[], tuning: RankingTuning = rankingTuning, options: { remember?: boolean } = {}) {
    this.#tuning = tuning;
    this.#searchOptions = { boost: tuning.boost, bm25: tuning.bm25, weights: { fuzzy: tuning.fuzzyWeight, prefix: tuning.prefixWeight } };
    this.sections = new Map(sections.map((section) => [section.id, section]));
    this.#count = sections.length;
    this.#search = new SectionSearch({
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
    if (options.remember !== false) {
      this.#search.rememberTermExpansions();
      // Only searches made by #rank are remembered: the same option objects, with or without the procedure boost.
      this.#search.rememberTermResults((searchOptions) =>
        searchOptions.boost === this.#searchOptions.boost && searchOptions.bm25 === this.#searchOptions.bm25 && searchOptions.weights === this.#searchOptions.weights && searchOptions.fields === undefined && searchOptions.maxFuzzy === 6
          ? searchOptions.boostDocument === undefined ? 'plain' : searchOptions.boostDocument === this.#boostProcedures ? 'procedures' : undefined
          : undefined,
      );
    }
    for (const section of sections) {
      const all = new Set([...terms(section.heading), ...terms(section.parentHeading ?? ''), ...terms(section.docTitle), ...terms(section.text)]);
      this.#sectionTerms.set(section.id, all);
      this.#headingTerms.set(section.id, new Set(terms(section.heading)));
      this.#sequences.set(section.id, [...terms(section.heading), ...terms(section.text)]);
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
    const [top] = results;
    return {
      section: this.sections.get(top!.id as string)!,
      score: top!.score,
      confidence: confidenceFrom(this.#features(queryTerms, results)),
      alternatives: results.slice(1, 4).map((r) => ({ section: this.sections.get(r.id as string)!, score: r.score })),
    };
  }

  /** The features the confidence is computed from, exposed for the evaluation's fitting. */
  explain(question: string, options: SearchOptions = {}): Features | undefined {
    const ranked = this.#rank(question, options);
    return ranked && this.#features(ranked.queryTerms, ranked.results);
  }

  #rank(question: string, options: SearchOptions): { queryTerms: string[]; results: Ranked[] } | undefined {
    const queryTerms = [...new Set(terms(question))];
    if (queryTerms.length === 0 || this.#count === 0) return undefined;
    // Implied policy words join the query at a lower weight than the words actually typed.
    const typed = new Set(queryTerms);
    const expansion = expandQuery(question);
    const query = expansion ? `${question} ${expansion}` : question;
    const searchOptions: MiniSearchOptions = {
      ...this.#searchOptions,
      boostTerm: (term) => (typed.has(term) ? 1 : this.#tuning.expansionWeight),
      fuzzy: fuzzyFor,
      prefix: prefixFor,
      boostDocument: options.preferProcedure ? this.#boostProcedures : undefined,
    };
    // The best four: the answer, and the runners-up its confidence and alternatives are made of.
    const results = this.#search.best(query, searchOptions, 4);
    return results.length > 0 ? { queryTerms, results } : undefined;
  }

  #features(queryTerms: string[], results: Ranked[]): Features {
    const [top, second, third] = results as [Ranked, Ranked?, Ranked?];
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
    // Neighbouring pairs in the question's own order, which terms() keeps.
    const sequence = this.#sequences.get(top.id as string) ?? [];
    let pairs = 0;
    let nearPairs = 0;
    for (let i = 0; i + 1 < queryTerms.length; i++) {
      const a = queryTerms[i]!;
      const b = queryTerms[i + 1]!;
      const weight = this.#idf(a) + this.#idf(b);
      pairs += weight;
      if (sectionTerms.has(a) && sectionTerms.has(b) && occurNear(sequence, a, b, PROXIMITY_WINDOW)) nearPairs += weight;
    }
    return {
      proximity: pairs > 0 ? nearPairs / pairs : 0,
      margin3: third ? (top.score - third.score) / top.score : 1,
      coverage: total > 0 ? covered / total : 0,
      headingCoverage: total > 0 ? headingCovered / total : 0,
      margin: second ? (top.score - second.score) / top.score : 1,
      unknownShare: unknown / queryTerms.length,
      matched: Math.min(matched, 4) / 4,
    };
  }
}
