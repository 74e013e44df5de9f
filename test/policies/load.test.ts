import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { loadPolicyDirectory, MAX_POLICY_BYTES, sectionsForIndex, type LoadResult } from '../../src/policies/load.ts';

let dir: string;
let result: LoadResult;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esafety-load-'));
  await writeFile(path.join(dir, 'acceptable-use.md'), '---\nversion: 3\n---\n# Acceptable Use\n\nIntro.\n\n## Passwords\n\nUse a long passphrase.\n');
  await writeFile(path.join(dir, 'incident-procedure.md'), '# Online Safety Incident Procedure\n\n## Who to tell\n\nTell the DSL at once.\n');
  // Broken: prose and a section but no "# Title"; the first content is on line 3.
  await writeFile(path.join(dir, 'broken.md'), '\n\n## A section without a title\n\ntext\n');
  // Broken: front matter that never ends.
  await writeFile(path.join(dir, 'unterminated.md'), '---\nowner: dsl\n# Title\n');
  // A binary file wearing a .md name (an image renamed by mistake).
  await writeFile(path.join(dir, 'logo.md'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]));
  // Oversize: a valid document padded past the limit.
  await writeFile(path.join(dir, 'huge.md'), `# Huge\n\n${'All work and no play. '.repeat(Math.ceil(MAX_POLICY_BYTES / 22) + 10)}`);
  // Not policies at all: ignored rather than reported.
  await writeFile(path.join(dir, 'README.txt'), 'not a policy');
  await writeFile(path.join(dir, '.draft.md'), '# Hidden draft\n\ntext');
  await mkdir(path.join(dir, 'archive'));
  // A folder whose name ends in .md: cannot be read as a file.
  await mkdir(path.join(dir, 'old-versions.md'));
  result = await loadPolicyDirectory(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loading a folder of policies', () => {
  it('loads every good file even when others in the folder are broken', () => {
    expect(result.documents.map((d) => d.id).sort()).toEqual(['acceptable-use', 'incident-procedure']);
    const aup = result.documents.find((d) => d.id === 'acceptable-use')!;
    expect(aup.version).toBe('3');
    expect(aup.sections.map((s) => s.id)).toEqual(['acceptable-use#acceptable-use', 'acceptable-use#passwords']);
  });

  it('reports each bad file once, as file:line: reason', () => {
    expect(result.errors).toHaveLength(5);
    for (const error of result.errors) expect(error).toMatch(/^[a-z.-]+\.md:\d+: \S/);
    const byFile = Object.fromEntries(result.errors.map((error) => [error.split(':')[0], error]));
    expect(byFile['broken.md']).toMatch(/^broken\.md:3: no "# Title" line/);
    expect(byFile['unterminated.md']).toMatch(/^unterminated\.md:1: front matter starts with --- but never ends/);
    expect(byFile['logo.md']).toMatch(/^logo\.md:1: not a text file/);
    expect(byFile['old-versions.md']).toBe('old-versions.md:1: cannot be read (EISDIR)');
    expect(byFile['huge.md']).toMatch(new RegExp(`^huge\\.md:1: file is larger than ${MAX_POLICY_BYTES} bytes`));
  });

  it('uses the bare file name in errors, not the full path', () => {
    for (const error of result.errors) expect(error).not.toContain(dir);
  });

  it('ignores files that are not .md, hidden files and sub-folders', () => {
    const named = [...result.documents.map((d) => `${d.id}.md`), ...result.errors.map((e) => e.split(':')[0])];
    expect(named).not.toContain('README.txt');
    expect(named).not.toContain('.draft.md');
    expect(named.some((name) => name?.includes('archive'))).toBe(false);
  });

  it('fails clearly for a folder that does not exist, naming the folder', async () => {
    const missing = path.join(dir, 'no-such-folder');
    const error = await loadPolicyDirectory(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('not_found');
    expect((error as AppError).message).toBe(`cannot read policy folder ${missing}: ENOENT`);
  });

  it('fails clearly when given a file instead of a folder', async () => {
    const file = path.join(dir, 'acceptable-use.md');
    const error = await loadPolicyDirectory(file).catch((e: unknown) => e);
    expect((error as AppError).code).toBe('not_found');
    expect((error as AppError).message).toMatch(/cannot read policy folder .*acceptable-use\.md: ENOTDIR/);
  });

  it('loads an empty folder as no documents and no errors', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'esafety-empty-'));
    try {
      expect(await loadPolicyDirectory(empty)).toEqual({ documents: [], errors: [], warnings: [] });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('sections for the index', () => {
  it('marks incident and reporting procedure sections so a report is shown them first', () => {
    const sections = sectionsForIndex(result.documents);
    const byId = Object.fromEntries(sections.map((s) => [s.id, s]));
    expect(byId['incident-procedure#who-to-tell']).toMatchObject({ procedure: true, docTitle: 'Online Safety Incident Procedure' });
    expect(byId['acceptable-use#passwords']).toMatchObject({ procedure: false, version: '3', docId: 'acceptable-use' });
  });
});
