import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { parsePolicy, slugify } from '../../src/policies/markdown.ts';

/** The error parsePolicy throws, so its code and message can be checked. */
function parseError(file: string, raw: string): AppError {
  try {
    parsePolicy(file, raw);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error(`${file} parsed without an error`);
}

const ids = (raw: string, file = 'doc.md') => parsePolicy(file, raw).sections.map((section) => section.id);

describe('slugify follows the documented rule: lowercase, keep a-z 0-9 space hyphen, each space becomes a hyphen', () => {
  it.each([
    ["Pupils' phones during lessons", 'pupils-phones-during-lessons'],
    ['Email & messaging', 'email--messaging'],
    ['Loss, theft — damage', 'loss-theft--damage'],
    ['Who to tell', 'who-to-tell'],
    ['Year 7-9 devices', 'year-7-9-devices'],
    ['  Leading and trailing  ', '--leading-and-trailing--'],
    ['Wi-Fi -- access', 'wi-fi----access'],
    ['Café (staff only) #2', 'caf-staff-only-2'],
    ['<script>alert(1)</script> Rules', 'scriptalert1script-rules'],
    ['ÄÖÜ', ''],
  ])('%j -> %j', (heading, slug) => {
    expect(slugify(heading)).toBe(slug);
  });
});

describe('section ids and structure', () => {
  const pack = [
    '# Mobile Phones and Personal Devices Policy',
    '',
    'Intro paragraph about the policy.',
    '',
    '## Pupils\' phones during lessons',
    '',
    'Phones stay switched off and in bags.',
    '',
    '### Email & messaging',
    '',
    'Staff use school email only.',
    '',
    '### Loss, theft — damage',
    '',
    'The school is not liable.',
    '',
    '## Staff',
    '',
    'Staff phones stay out of sight.',
  ].join('\n');

  it('names each section <file without .md>#<slug>, for ## and ### alike', () => {
    expect(ids(pack, 'mobile-and-personal-devices.md')).toEqual([
      'mobile-and-personal-devices#mobile-phones-and-personal-devices-policy',
      'mobile-and-personal-devices#pupils-phones-during-lessons',
      'mobile-and-personal-devices#email--messaging',
      'mobile-and-personal-devices#loss-theft--damage',
      'mobile-and-personal-devices#staff',
    ]);
  });

  it('takes the document id from the file name, whatever folder it is in', () => {
    expect(parsePolicy('/some/dir/remote-learning.md', '# Remote\n\ntext').id).toBe('remote-learning');
    expect(parsePolicy('C:\\policies\\Remote.MD', '# Remote\n\ntext').id).toBe('Remote');
  });

  it('gives the intro text under the # title the title slug, at level 1', () => {
    const [intro] = parsePolicy('doc.md', pack).sections;
    expect(intro).toMatchObject({ slug: 'mobile-phones-and-personal-devices-policy', level: 1, heading: 'Mobile Phones and Personal Devices Policy', text: 'Intro paragraph about the policy.', line: 1 });
  });

  it('leaves out a title section that has no intro text', () => {
    expect(ids('# Title\n## First\n\ntext')).toEqual(['doc#first']);
  });

  it('keeps text under a ## before its first ### with the ##, and gives ### their parent', () => {
    const doc = parsePolicy('doc.md', '# T\n## Parent\nparent text\n### Child\nchild text\n## Next\nnext text');
    const [parent, child, next] = doc.sections;
    expect(parent).toMatchObject({ id: 'doc#parent', level: 2, text: 'parent text' });
    expect(child).toMatchObject({ id: 'doc#child', level: 3, parentHeading: 'Parent', text: 'child text' });
    expect(next).toMatchObject({ id: 'doc#next', level: 2, text: 'next text' });
    expect(next!.parentHeading).toBeUndefined();
  });

  it('records the 1-based file line of each heading, counting the front matter', () => {
    const doc = parsePolicy('doc.md', '---\nowner: dsl\n---\n# T\nintro\n\n## A\ntext\n### B\ntext');
    expect(doc.sections.map((s) => [s.slug, s.line])).toEqual([['t', 4], ['a', 7], ['b', 9]]);
  });

  it('numbers repeated slugs -1, -2 in document order, the title counting as the first', () => {
    const doc = parsePolicy('doc.md', '# Scope\nintro\n## Scope\na\n## Scope!\nb\n### scope\nc\n## Other\nd');
    expect(doc.sections.map((s) => s.id)).toEqual(['doc#scope', 'doc#scope-1', 'doc#scope-2', 'doc#scope-3', 'doc#other']);
    expect(doc.warnings.join('\n')).toMatch(/repeats; its id is scope-1/);
  });

  it('never hands out the same id twice, even when a heading is literally "X 1"', () => {
    const sectionIds = ids('# T\n## Scope\na\n## Scope 1\nb\n## Scope\nc');
    expect(new Set(sectionIds).size).toBe(sectionIds.length);
    expect(sectionIds.slice(0, 2)).toEqual(['doc#scope', 'doc#scope-1']);
  });

  it('restarts the numbering in each file', () => {
    const raw = '# T\n## Scope\na\n## Scope\nb';
    expect(ids(raw, 'a.md')).toEqual(['a#scope', 'a#scope-1']);
    expect(ids(raw, 'b.md')).toEqual(['b#scope', 'b#scope-1']);
  });

  it('does not treat # lines inside fenced code as headings', () => {
    const raw = [
      '# T',
      '## Example',
      '```bash',
      '# install the app',
      '## not a section',
      '```',
      '~~~',
      '### nor this',
      '```',
      '## still code: a ``` line does not close a ~~~ fence',
      '~~~',
      '## After',
      'text',
    ].join('\n');
    const doc = parsePolicy('doc.md', raw);
    expect(doc.sections.map((s) => s.id)).toEqual(['doc#example', 'doc#after']);
    expect(doc.sections[0]!.text).toContain('# install the app');
    expect(doc.sections[0]!.text).toContain('## not a section');
    expect(doc.sections[0]!.text).toContain('### nor this');
  });

  it('keeps #### and deeper inside the current section as text', () => {
    const doc = parsePolicy('doc.md', '# T\n## A\n#### Deep detail\nmore');
    expect(doc.sections.map((s) => s.id)).toEqual(['doc#a']);
    expect(doc.sections[0]!.text).toContain('Deep detail');
  });

  it('needs a space after the #s, and keeps a # that ends a word ("C# and F#")', () => {
    const doc = parsePolicy('doc.md', '# T\n## A\n##NoSpace\ntext\n## C# and F#\ncode\n## Closed ##\nx');
    expect(doc.sections.map((s) => s.heading)).toEqual(['A', 'C# and F#', 'Closed']);
    expect(doc.sections[0]!.text).toBe('##NoSpace\ntext');
    expect(doc.sections[1]!.id).toBe('doc#c-and-f');
  });

  it('treats a ### with no ## above it as a ## and warns', () => {
    const doc = parsePolicy('doc.md', '# T\n### Orphan\ntext');
    expect(doc.sections[0]).toMatchObject({ id: 'doc#orphan', level: 2 });
    expect(doc.warnings.join('\n')).toMatch(/doc\.md:2: ### "Orphan" has no ## above it/);
  });

  it('turns a second # title into a ## section with a warning', () => {
    const doc = parsePolicy('doc.md', '# T\nintro\n# Another\ntext');
    expect(doc.title).toBe('T');
    expect(doc.sections.map((s) => [s.id, s.level])).toEqual([['doc#t', 1], ['doc#another', 2]]);
    expect(doc.warnings.join('\n')).toMatch(/doc\.md:3: a second # title/);
  });
});

describe('front matter', () => {
  const withFrontMatter = (yaml: string, body = '# T\n\ntext') => parsePolicy('doc.md', `---\n${yaml}\n---\n${body}`);

  it('reads owner, review date, audience list and version', () => {
    const doc = withFrontMatter('owner: dsl\nreview: 2027-01-15\naudience: [staff, pupils]\nversion: "2026.3"');
    expect(doc.meta).toEqual({ owner: 'dsl', review: '2027-01-15', audience: ['staff', 'pupils'], version: '2026.3' });
    expect(doc.version).toBe('2026.3');
    expect(doc.title).toBe('T');
  });

  it('accepts audience as one comma- or space-separated string, case-insensitively', () => {
    expect(withFrontMatter('audience: Staff, Parents').meta.audience).toEqual(['staff', 'parents']);
    expect(withFrontMatter('audience: pupils').meta.audience).toEqual(['pupils']);
  });

  it('ignores an unknown audience with a warning and defaults to staff', () => {
    const doc = withFrontMatter('audience: [governors]');
    expect(doc.meta.audience).toEqual(['staff']);
    expect(doc.warnings.join('\n')).toMatch(/unknown audience/);
    expect(parsePolicy('doc.md', '# T\ntext').meta.audience).toEqual(['staff']);
  });

  it('turns a numeric version into a string with its digits as written', () => {
    expect(withFrontMatter('version: 3').version).toBe('3');
    expect(withFrontMatter('version: 2026.1').version).toBe('2026.1');
    expect(withFrontMatter('version: 2026.10').version).toBe('2026.10');
    expect(withFrontMatter('version: 1.0').meta.version).toBe('1.0');
  });

  it('labels a document without a version by the first 8 characters of its content hash', () => {
    const doc = parsePolicy('doc.md', '# T\ntext');
    expect(doc.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.version).toBe(doc.hash.slice(0, 8));
  });

  describe('review dates are normalised to YYYY-MM-DD, the day the writer meant', () => {
    const tz = process.env.TZ;
    afterEach(() => {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    });

    it.each([
      ['2027-01-15', '2027-01-15'],
      ['2027-1-5', '2027-01-05'],
      ['"2027-01-15"', '2027-01-15'],
      ['01/09/2026', '2026-09-01'],
      ['1 September 2026', '2026-09-01'],
      ['September 1, 2026', '2026-09-01'],
    ])('%s -> %s in any time zone', (written, expected) => {
      for (const zone of ['UTC', 'Europe/London', 'Pacific/Auckland', 'America/Los_Angeles']) {
        process.env.TZ = zone;
        expect(withFrontMatter(`review: ${written}`).meta.review, zone).toBe(expected);
      }
    });

    it('ignores a review that is not a date, with a warning', () => {
      for (const written of ['soon', '31/02/2026', '2026-13-01']) {
        const doc = withFrontMatter(`review: ${written}`);
        expect(doc.meta.review).toBeUndefined();
        expect(doc.warnings.join('\n')).toMatch(/is not a date; ignored/);
      }
    });
  });

  it('fails on front matter that never ends, naming file and line 1', () => {
    const error = parseError('staff-aup.md', '---\nowner: dsl\n# Title\n\ntext');
    expect(error.code).toBe('policy_parse_failed');
    expect(error.message).toMatch(/^staff-aup\.md:1: front matter starts with --- but never ends/);
  });

  it('fails on invalid YAML, naming the file line of the problem', () => {
    // Line 1 is ---, so the unterminated quote on the YAML's line 2 is the file's line 3.
    const error = parseError('bad.md', '---\nowner: dsl\nversion: "2026\n---\n# T\ntext');
    expect(error.code).toBe('policy_parse_failed');
    expect(error.message).toMatch(/^bad\.md:3: front matter is not valid YAML/);
  });

  it('fails on a front matter field of the wrong shape, naming the field', () => {
    const error = parseError('bad.md', '---\nowner: [a, b]\n---\n# T\ntext');
    expect(error.code).toBe('policy_parse_failed');
    expect(error.message).toMatch(/^bad\.md:\d+: front matter field owner/);
  });

  it('allows empty front matter and unknown fields', () => {
    expect(parsePolicy('doc.md', '---\n---\n# T\ntext').meta).toEqual({ audience: ['staff'] });
    expect(withFrontMatter('owner: dsl\nnotes: kept out of the meta').meta.owner).toBe('dsl');
  });
});

describe('documents that cannot be used', () => {
  it('fails without a # title, AppError policy_parse_failed naming the file and the first content line', () => {
    const error = parseError('no-title.md', '\n\n## Only a section\n\ntext');
    expect(error.code).toBe('policy_parse_failed');
    expect(error.message).toMatch(/^no-title\.md:3: no "# Title" line/);
  });

  it('counts the front matter when naming the line of a missing title', () => {
    const error = parseError('no-title.md', '---\nowner: dsl\n---\nJust prose, no headings.');
    expect(error.message).toMatch(/^no-title\.md:4: /);
  });

  it('fails on an empty file at line 1', () => {
    expect(parseError('empty.md', '').message).toMatch(/^empty\.md:1: no "# Title" line/);
  });

  it('warns about a title with no text but still loads', () => {
    const doc = parsePolicy('bare.md', '# Only a title\n');
    expect(doc.sections).toEqual([]);
    expect(doc.warnings.join('\n')).toMatch(/bare\.md:1: the document has a title but no text/);
  });
});

describe('encodings and line endings', () => {
  const unix = '---\nowner: dsl\nversion: 2\n---\n# Title\n\nIntro.\n\n## Section A\n\nLine one.\nLine two.\n';

  it('reads CRLF files exactly like LF files (same sections, text and hash)', () => {
    const crlf = parsePolicy('doc.md', unix.replace(/\n/g, '\r\n'));
    const lf = parsePolicy('doc.md', unix);
    expect(crlf.sections).toEqual(lf.sections);
    expect(crlf.meta).toEqual(lf.meta);
    expect(crlf.hash).toBe(lf.hash);
    expect(crlf.sections[1]!.text).toBe('Line one.\nLine two.');
  });

  it('reads old Mac CR-only line endings', () => {
    expect(parsePolicy('doc.md', unix.replace(/\n/g, '\r')).sections.map((s) => s.id)).toEqual(['doc#title', 'doc#section-a']);
  });

  it('ignores a UTF-8 byte order mark before the front matter or the title', () => {
    expect(parsePolicy('doc.md', `\uFEFF${unix}`).meta.owner).toBe('dsl');
    expect(parsePolicy('doc.md', `\uFEFF${unix}`).hash).toBe(parsePolicy('doc.md', unix).hash);
    expect(parsePolicy('doc.md', '\uFEFF# Title\ntext').title).toBe('Title');
  });
});

describe('markup and script in policy files are kept as text', () => {
  const raw = [
    '# Policy <script>alert("title")</script>',
    '',
    '## <img src=x onerror=alert(1)> Images',
    '',
    'Click [here](javascript:alert(1)) or <b>bold</b> and **strong** <at>Everyone</at>.',
    '<script>document.cookie</script>',
  ].join('\n');

  it('keeps headings and text verbatim: parsing neither strips nor runs them', () => {
    const doc = parsePolicy('evil.md', raw);
    expect(doc.title).toBe('Policy <script>alert("title")</script>');
    const section = doc.sections.find((s) => s.level === 2)!;
    expect(section.heading).toBe('<img src=x onerror=alert(1)> Images');
    expect(section.id).toBe('evil#img-srcx-onerroralert1-images');
    expect(section.text).toBe('Click [here](javascript:alert(1)) or <b>bold</b> and **strong** <at>Everyone</at>.\n<script>document.cookie</script>');
  });
});
