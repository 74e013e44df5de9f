/**
 * A school's policies in the store: every imported version kept (readable later), the current set,
 * coordinator-saved answers, and an in-memory search index per school rebuilt only when the set's
 * revision changes.
 *
 * Keeping the index current costs a question turn nothing once the school's index is built: while a
 * background refresher runs (`startRefresh`, started by the server) the set's revision is re-read
 * off the turn path every interval (30 s), and a changed set is rebuilt there too. An import or a
 * saved answer made through this instance rebuilds its index at once, inside that call. Without a
 * refresher (command line, tests) the revision is re-read by `index()` at most every `recheckMs`.
 */
import { isAppError } from '../errors.ts';
import { Refresher } from '../refresher.ts';
import type { Store } from '../store/store.ts';
import { sectionsForIndex } from './load.ts';
import type { PolicyDocument, PolicyMeta, PolicySection } from './markdown.ts';
import { PolicyIndex, type IndexedSection } from './search.ts';

export interface PolicyVersion {
  docId: string;
  title: string;
  hash: string;
  version: string;
  meta: PolicyMeta;
  sections: PolicySection[];
  source: string;
  importedAt: string;
  importedBy: string;
}

export interface PolicySetEntry {
  docId: string;
  title: string;
  hash: string;
  version: string;
  meta: PolicyMeta;
  importedAt: string;
  /** Every version ever imported, oldest first. */
  history: Array<{ hash: string; version: string; importedAt: string }>;
}

export interface SavedAnswer {
  id: string;
  question: string;
  answer: string;
  answeredBy: string;
  answeredAt: string;
}

interface PolicySet {
  revision: number;
  documents: Record<string, PolicySetEntry>;
  savedAnswers: SavedAnswer[];
}

export interface ImportReport {
  added: string[];
  updated: string[];
  unchanged: string[];
}

const setKey = (school: string) => ({ kind: 'policy-set', school, id: 'current' });
const versionKey = (school: string, docId: string, hash: string) => ({ kind: 'policy-version', school, id: `${docId}@${hash}` });

/** Saved answers are indexed as sections of this pseudo-document. */
export const SAVED_ANSWER_DOC = 'coordinator-answers';

interface CachedIndex {
  revision: number;
  index: PolicyIndex;
  set: PolicySet;
  checkedAt: number;
}

export class PolicyLibrary {
  readonly #store: Store;
  readonly #recheckMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedIndex>();
  /** Loads in progress, so concurrent first questions for a school build its index once. */
  readonly #loading = new Map<string, Promise<CachedIndex>>();
  #refresher: Refresher | undefined;
  #onRefreshError: ((error: unknown, school: string) => void) | undefined;

  constructor(store: Store, options: { recheckMs?: number; now?: () => number } = {}) {
    this.#store = store;
    this.#recheckMs = options.recheckMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  async #readSet(school: string) {
    const record = await this.#store.get<PolicySet>(setKey(school));
    return { set: record?.data ?? { revision: 0, documents: {}, savedAnswers: [] }, etag: record?.etag };
  }

  /** Stores a new version of each changed document; unchanged ones are left alone. */
  async import(school: string, documents: PolicyDocument[], importedBy: string): Promise<ImportReport> {
    for (let attempt = 0; ; attempt++) {
      const { set, etag } = await this.#readSet(school);
      const report: ImportReport = { added: [], updated: [], unchanged: [] };
      const next: PolicySet = { ...set, documents: { ...set.documents }, revision: set.revision + 1 };
      const now = new Date(this.#now()).toISOString();
      for (const document of documents) {
        const existing = set.documents[document.id];
        if (existing?.hash === document.hash) {
          report.unchanged.push(document.id);
          continue;
        }
        const version: PolicyVersion = {
          docId: document.id, title: document.title, hash: document.hash, version: document.version, meta: document.meta,
          sections: document.sections, source: document.source, importedAt: now, importedBy,
        };
        try {
          await this.#store.create(versionKey(school, document.id, document.hash), version);
        } catch (error) {
          // The same content imported before (then replaced, now back): the stored version stands.
          if (!isAppError(error, 'conflict')) throw error;
        }
        const history = [...(existing?.history ?? []), { hash: document.hash, version: document.version, importedAt: now }];
        next.documents[document.id] = { docId: document.id, title: document.title, hash: document.hash, version: document.version, meta: document.meta, importedAt: now, history };
        (existing ? report.updated : report.added).push(document.id);
      }
      if (report.added.length === 0 && report.updated.length === 0) return report;
      try {
        if (etag) await this.#store.replace(setKey(school), next, etag);
        else await this.#store.create(setKey(school), next);
        await this.#afterChange(school);
        return report;
      } catch (error) {
        if (attempt < 3 && (isAppError(error, 'precondition_failed') || isAppError(error, 'conflict'))) continue;
        throw error;
      }
    }
  }

  async hasPolicies(school: string): Promise<boolean> {
    const { set } = await this.#readSet(school);
    return Object.keys(set.documents).length > 0;
  }

  async list(school: string): Promise<PolicySetEntry[]> {
    const { set } = await this.#readSet(school);
    return Object.values(set.documents).sort((a, b) => a.title.localeCompare(b.title));
  }

  /** One version of a document (the current one when no hash is given). */
  async getVersion(school: string, docId: string, hash?: string): Promise<PolicyVersion | undefined> {
    let wanted = hash;
    if (!wanted) {
      const { set } = await this.#readSet(school);
      wanted = set.documents[docId]?.hash;
      if (!wanted) return undefined;
    }
    return (await this.#store.get<PolicyVersion>(versionKey(school, docId, wanted)))?.data;
  }

  async saveAnswer(school: string, answer: SavedAnswer): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { set, etag } = await this.#readSet(school);
      const next: PolicySet = { ...set, revision: set.revision + 1, savedAnswers: [...set.savedAnswers.filter((a) => a.id !== answer.id), answer] };
      try {
        if (etag) await this.#store.replace(setKey(school), next, etag);
        else await this.#store.create(setKey(school), next);
        await this.#afterChange(school);
        return;
      } catch (error) {
        if (attempt < 3 && (isAppError(error, 'precondition_failed') || isAppError(error, 'conflict'))) continue;
        throw error;
      }
    }
  }

  /**
   * The school's search index. Once built it is served from memory: kept current by the refresher
   * when one runs, otherwise re-checked against the set's revision at most every `recheckMs`.
   */
  async index(school: string): Promise<PolicyIndex> {
    const cached = this.#cache.get(school);
    if (cached && (this.#refresher || this.#now() - cached.checkedAt < this.#recheckMs)) return cached.index;
    return (await this.#loadOnce(school)).index;
  }

  /**
   * Keeps every built index current in the background: every `intervalMs` (default `recheckMs`,
   * 30 s) one point read of each cached school's policy set, and a rebuild when its revision
   * changed. Call `stopRefresh` before closing the store.
   */
  startRefresh(options: { intervalMs?: number; onError?: (error: unknown, school: string) => void } = {}): void {
    void this.#refresher?.stop();
    this.#onRefreshError = options.onError;
    this.#refresher = new Refresher(() => this.refresh(), options.intervalMs ?? this.#recheckMs);
  }

  async stopRefresh(): Promise<void> {
    const refresher = this.#refresher;
    this.#refresher = undefined;
    await refresher?.stop();
  }

  /** One refresh pass over every school whose index is built (what the refresher runs each interval). */
  async refresh(): Promise<void> {
    for (const school of [...this.#cache.keys()]) {
      try {
        await this.#loadOnce(school);
      } catch (error) {
        this.#onRefreshError?.(error, school); // the built index stands until a pass succeeds
      }
    }
  }

  /** After this instance changed a school's set: rebuild a built index now, so the next question pays nothing. */
  async #afterChange(school: string): Promise<void> {
    if (!this.#cache.has(school)) return; // never searched here (the command line): nothing to rebuild
    try {
      await this.#load(school);
    } catch {
      this.#cache.delete(school); // the change is saved; the next question rebuilds the index
    }
  }

  #loadOnce(school: string): Promise<CachedIndex> {
    let pending = this.#loading.get(school);
    if (!pending) {
      pending = this.#load(school).finally(() => this.#loading.delete(school));
      this.#loading.set(school, pending);
    }
    return pending;
  }

  /** Reads the set (one point read) and, when its revision is not the one built, the versions it names, then builds the index. */
  async #load(school: string): Promise<CachedIndex> {
    const { set } = await this.#readSet(school);
    const now = this.#now();
    const cached = this.#cache.get(school);
    if (cached && cached.revision === set.revision) {
      cached.checkedAt = now;
      return cached;
    }
    const versions = await Promise.all(Object.values(set.documents).map((entry) => this.getVersion(school, entry.docId, entry.hash)));
    const documents = versions.filter((v): v is PolicyVersion => v !== undefined).map((v) => ({ id: v.docId, title: v.title, meta: v.meta, sections: v.sections, hash: v.hash, version: v.version, source: '', warnings: [] }));
    const sections: IndexedSection[] = [
      ...sectionsForIndex(documents),
      ...set.savedAnswers.map((answer) => ({
        id: `${SAVED_ANSWER_DOC}#${answer.id}`,
        docId: SAVED_ANSWER_DOC,
        docTitle: "Coordinator's answers",
        heading: answer.question,
        text: answer.answer,
        version: answer.answeredAt.slice(0, 10),
      })),
    ];
    const entry: CachedIndex = { revision: set.revision, index: new PolicyIndex(sections), set, checkedAt: now };
    // Two loads may overlap (a refresh pass and an import here): the newer revision stays.
    const current = this.#cache.get(school);
    if (current && current.revision > entry.revision) return current;
    this.#cache.set(school, entry);
    return entry;
  }

  /** A saved answer by its section id, for citing who answered and when. */
  savedAnswer(school: string, sectionId: string): SavedAnswer | undefined {
    const id = sectionId.slice(SAVED_ANSWER_DOC.length + 1);
    return this.#cache.get(school)?.set.savedAnswers.find((answer) => answer.id === id);
  }

}
