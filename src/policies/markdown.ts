/**
 * Parses one policy document: optional YAML front matter, a `#` title, sections under `##` and
 * `###`. Section ids follow the documented rule (see slugify) so that an answer can be cited and
 * checked: `<file name without .md>#<heading slug>`.
 */
import { createHash } from 'node:crypto';
import { isScalar, parseDocument } from 'yaml';
import { z } from 'zod';
import { AppError } from '../errors.ts';

export interface PolicySection {
  /** `<doc id>#<slug>`. */
  id: string;
  slug: string;
  heading: string;
  /** 1 for the text under the title, 2 for `##`, 3 for `###`. */
  level: 1 | 2 | 3;
  /** The `##` heading a `###` sits under. */
  parentHeading?: string;
  /** Plain text of the section body (Markdown kept as written; renderers escape it). */
  text: string;
  /** 1-based line of the heading in the file. */
  line: number;
}

export interface PolicyMeta {
  owner?: string;
  review?: string;
  audience: Array<'staff' | 'pupils' | 'parents'>;
  version?: string;
}

export interface PolicyDocument {
  /** The file name without .md: stable across versions. */
  id: string;
  title: string;
  meta: PolicyMeta;
  sections: PolicySection[];
  /** sha256 of the file's normalised content: what a version is, whatever its label. */
  hash: string;
  /** The version label from front matter, or the first 8 characters of the hash. */
  version: string;
  source: string;
  /** Problems that did not stop the document from loading (duplicate headings, skipped levels). */
  warnings: string[];
}

/** The heading slug: lowercase, keep a-z 0-9 space and hyphen, each space becomes a hyphen. */
export function slugify(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');
}

const frontMatterSchema = z
  .object({
    owner: z.string().trim().min(1).optional(),
    review: z.union([z.string(), z.date()]).optional(),
    audience: z.union([z.string(), z.array(z.string())]).optional(),
    version: z.union([z.string(), z.number()]).optional(),
    title: z.string().optional(),
  })
  .loose();

const audiences = ['staff', 'pupils', 'parents'] as const;

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * A review date as YYYY-MM-DD, the calendar day the writer meant whatever the server's time zone:
 * ISO dates are taken as written, d/m/yyyy is read day first (UK schools), and anything else
 * ("1 September 2026") by its local calendar day, never shifted by a UTC conversion.
 */
function calendarDate(value: string | Date): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString().slice(0, 10);
  const raw = value.trim();
  const iso = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[T ])/.exec(raw);
  const dayFirst = /^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$/.exec(raw);
  if (iso || dayFirst) {
    const [year, month, day] = iso ? [Number(iso[1]), Number(iso[2]), Number(iso[3])] : [Number(dayFirst![3]), Number(dayFirst![2]), Number(dayFirst![1])];
    const date = new Date(Date.UTC(year, month - 1, day));
    if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
    return `${year}-${pad(month)}-${pad(day)}`;
  }
  const date = new Date(raw);
  if (Number.isNaN(date.getTime())) return undefined;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function parseFrontMatter(raw: string, file: string): { meta: PolicyMeta; bodyStart: number; body: string; warnings: string[] } {
  const warnings: string[] = [];
  const lines = raw.split('\n');
  if (lines[0]?.trim() !== '---') return { meta: { audience: ['staff'] }, bodyStart: 0, body: raw, warnings };
  const end = lines.findIndex((line, index) => index > 0 && line.trim() === '---');
  if (end < 0) throw new AppError('policy_parse_failed', `${file}:1: front matter starts with --- but never ends`);
  const document = parseDocument(lines.slice(1, end).join('\n'));
  const yamlError = document.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0]?.line;
    throw new AppError('policy_parse_failed', `${file}:${(line ?? 0) + 1}: front matter is not valid YAML (${yamlError.message.split('\n')[0]})`);
  }
  const data = (document.toJS() as Record<string, unknown> | null) ?? {};
  // A version written as a number keeps its digits as written: 2026.10 is not 2026.1, 1.0 is not 1.
  const versionNode = data && typeof data === 'object' ? document.get('version', true) : undefined;
  if (isScalar(versionNode) && typeof versionNode.value === 'number' && versionNode.source) data.version = versionNode.source;
  const parsed = frontMatterSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new AppError('policy_parse_failed', `${file}:2: front matter field ${issue.path.join('.')}: ${issue.message}`);
  }
  const fm = parsed.data;
  const audienceList = (Array.isArray(fm.audience) ? fm.audience : fm.audience ? fm.audience.split(/[,\s]+/) : ['staff'])
    .map((a) => a.trim().toLowerCase())
    .filter(Boolean);
  const audience = audienceList.filter((a): a is PolicyMeta['audience'][number] => (audiences as readonly string[]).includes(a));
  if (audience.length < audienceList.length) warnings.push(`${file}: unknown audience ignored (use staff, pupils or parents)`);
  let review: string | undefined;
  if (fm.review !== undefined) {
    review = calendarDate(fm.review);
    if (review === undefined) warnings.push(`${file}: review date "${String(fm.review)}" is not a date; ignored`);
  }
  return {
    meta: { owner: fm.owner, review, audience: audience.length ? audience : ['staff'], version: fm.version === undefined ? undefined : String(fm.version) },
    bodyStart: end + 1,
    body: lines.slice(end + 1).join('\n'),
    warnings,
  };
}

/**
 * Parses a document. Throws AppError('policy_parse_failed') naming file and line when it cannot be
 * used at all (no title, bad front matter); oddities it can live with become warnings.
 */
export function parsePolicy(file: string, raw: string): PolicyDocument {
  const id = file.replace(/^.*[\\/]/, '').replace(/\.md$/i, '');
  const normalised = raw.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const { meta, bodyStart, body, warnings } = parseFrontMatter(normalised, file);
  const lines = body.split('\n');

  let title: string | undefined;
  let titleLine = 0;
  const sections: PolicySection[] = [];
  const seen = new Map<string, number>();
  let current: PolicySection | undefined;
  let buffer: string[] = [];
  let parentHeading: string | undefined;
  /** The opening fence (``` or ~~~, three or more) while inside a fenced code block. */
  let fence: string | undefined;

  const uniqueSlug = (heading: string): string => {
    const base = slugify(heading);
    let count = seen.get(base);
    if (count === undefined) {
      seen.set(base, 0);
      return base;
    }
    // -1, -2, ...; skipping a suffix another heading already took ("Scope", "Scope", "Scope 1").
    let slug: string;
    do slug = `${base}-${++count}`;
    while (seen.has(slug));
    seen.set(base, count);
    seen.set(slug, 0);
    warnings.push(`${file}: heading "${heading}" repeats; its id is ${slug}`);
    return slug;
  };
  const flush = () => {
    if (current) {
      current.text = buffer.join('\n').trim();
      sections.push(current);
    }
    buffer = [];
  };

  lines.forEach((line, index) => {
    const lineNumber = bodyStart + index + 1;
    // A fence closes only with the same character, at least as long (CommonMark).
    const fenceMark = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    const wasInFence = fence !== undefined;
    if (fenceMark && fence === undefined) fence = fenceMark;
    else if (fenceMark && fenceMark[0] === fence![0] && fenceMark.length >= fence!.length && line.trim() === fenceMark) fence = undefined;
    // A closing run of #s counts only after a space: "## C# and F#" keeps its last #.
    const heading = wasInFence || fence !== undefined ? null : /^(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (!heading) {
      buffer.push(line);
      return;
    }
    const level = heading[1]!.length;
    const headingText = heading[2]!.trim();
    if (level === 1) {
      if (title === undefined) {
        flush();
        title = headingText;
        titleLine = lineNumber;
        current = { id: '', slug: uniqueSlug(headingText), heading: headingText, level: 1, text: '', line: lineNumber };
        return;
      }
      warnings.push(`${file}:${lineNumber}: a second # title; treated as a ## section`);
    }
    if (headingText === '') {
      warnings.push(`${file}:${lineNumber}: empty heading ignored`);
      buffer.push(line);
      return;
    }
    if (level > 3) {
      // Deeper headings stay inside their section as text: the documented ids stop at ###.
      buffer.push(headingText);
      return;
    }
    flush();
    const sectionLevel: 2 | 3 = level === 3 && parentHeading !== undefined ? 3 : 2;
    if (level === 3 && parentHeading === undefined) warnings.push(`${file}:${lineNumber}: ### "${headingText}" has no ## above it`);
    if (sectionLevel === 2) parentHeading = headingText;
    current = {
      id: '',
      slug: uniqueSlug(headingText),
      heading: headingText,
      level: sectionLevel,
      parentHeading: sectionLevel === 3 ? parentHeading : undefined,
      text: '',
      line: lineNumber,
    };
  });
  flush();

  if (title === undefined) {
    const firstContent = lines.findIndex((line) => line.trim() !== '');
    throw new AppError('policy_parse_failed', `${file}:${bodyStart + Math.max(firstContent, 0) + 1}: no "# Title" line; every policy starts with one`);
  }
  for (const section of sections) section.id = `${id}#${section.slug}`;
  const kept = sections.filter((section) => section.level !== 1 || section.text.length > 0);
  if (kept.length === 0) warnings.push(`${file}:${titleLine}: the document has a title but no text`);
  const hash = createHash('sha256').update(normalised).digest('hex');
  return { id, title: title!, meta, sections: kept, hash, version: meta.version ?? hash.slice(0, 8), source: normalised, warnings };
}
