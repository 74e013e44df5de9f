/**
 * Reading a folder of policy files. A broken file never stops the others: each failure is
 * reported with its file and line, and the rest load.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, asAppError, isAppError } from '../errors.ts';
import { parsePolicy, type PolicyDocument } from './markdown.ts';
import type { IndexedSection } from './search.ts';

export interface LoadResult {
  documents: PolicyDocument[];
  /** One line per file that could not be loaded: `file:line: reason`. */
  errors: string[];
  warnings: string[];
}

/** Policies larger than this are refused: a policy is prose, not a data dump. */
export const MAX_POLICY_BYTES = 1_000_000;

export async function loadPolicyDirectory(dir: string): Promise<LoadResult> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.toLowerCase().endsWith('.md') && !name.startsWith('.')).sort();
  } catch (error) {
    throw new AppError('not_found', `cannot read policy folder ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  const result: LoadResult = { documents: [], errors: [], warnings: [] };
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const raw = await readFile(file);
      if (raw.length > MAX_POLICY_BYTES) throw new AppError('policy_parse_failed', `${name}:1: file is larger than ${MAX_POLICY_BYTES} bytes`);
      if (raw.includes(0)) throw new AppError('policy_parse_failed', `${name}:1: not a text file`);
      const document = parsePolicy(name, raw.toString('utf8'));
      result.documents.push(document);
      result.warnings.push(...document.warnings);
    } catch (error) {
      // Parse failures name file and line already; a read failure (a folder named x.md, no
      // permission) is named here the same way, without the server's full path.
      result.errors.push(isAppError(error) ? error.message : `${name}:1: cannot be read (${(error as NodeJS.ErrnoException).code ?? asAppError(error).message})`);
    }
  }
  return result;
}

const procedureDocument = /\b(incident|incidents|responding|response|reporting|safeguarding|concerns?|disclosures?|procedure)\b/i;
// Words of a procedure heading; "reports" alone is left out (school reports to parents are no procedure).
const procedureHeading = /\b(reporting|report (an?|it|a concern)|incidents?|disclos|concerns?|what to do|immediate|respond|responding|emergency|escalat)/i;

/** Sections as the search index wants them, marking those that tell staff what to do in an incident. */
export function sectionsForIndex(documents: PolicyDocument[]): IndexedSection[] {
  return documents.flatMap((document) => {
    const procedureDoc = procedureDocument.test(document.title) || procedureDocument.test(document.id.replace(/-/g, ' '));
    return document.sections.map((section) => ({
      id: section.id,
      docId: document.id,
      docTitle: document.title,
      heading: section.heading,
      parentHeading: section.parentHeading,
      text: section.text,
      version: document.version,
      procedure: procedureDoc || procedureHeading.test(section.heading),
    }));
  });
}
