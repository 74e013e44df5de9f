/**
 * Issue 2, "Must have" 8, 9 and 10 from the command line: the real `esafety-bot` binary in child
 * processes against a temporary DATA_DIR. Standard output carries only data; logs go to standard error.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardOf, cardText, messageActivity } from './helpers/activities.ts';
import { repoRoot, startApp, type RunningApp } from './helpers/app.ts';
import { runCli } from './helpers/cli.ts';
import { startFakeConnector, type FakeConnector } from './helpers/fake-connector.ts';

const policiesDir = path.join(repoRoot, 'policies');
let workDir: string;
let dataDir: string;
const cli = (args: string[], input?: string) => runCli(args, { cwd: workDir, env: { DATA_DIR: dataDir, POLICIES_DIR: policiesDir }, input });
const noLogLines = (stdout: string) => expect(stdout).not.toMatch(/"level":/);

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'esafety-cli-'));
  dataDir = path.join(workDir, 'data');
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe('roles from the command line', () => {
  it('grant, list and revoke print clean data on standard output', async () => {
    const granted = await cli(['roles', 'grant', '--school', 'default', '--user', 'alex', '--role', 'coordinator']);
    expect(granted.code).toBe(0);
    expect(granted.stdout).toBe('alex\tstaff,coordinator\n');

    await cli(['roles', 'grant', '--school', 'default', '--user', 'sam', '--role', 'dsl']);
    const again = await cli(['roles', 'grant', '--school', 'default', '--user', 'sam', '--role', 'governor']);
    expect(again.stdout).toBe('sam\tstaff,dsl,governor\n');

    const listed = await cli(['roles', 'list', '--school', 'default']);
    expect(listed.code).toBe(0);
    noLogLines(listed.stdout);
    expect(listed.stdout.split('\n').filter(Boolean).sort()).toEqual(['alex\tcoordinator\t', 'sam\tdsl,governor\t']);

    const revoked = await cli(['roles', 'revoke', '--school', 'default', '--user', 'sam', '--role', 'dsl']);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe('sam\tstaff,governor\n');
  });

  it('an unknown role exits non-zero naming the roles there are, and changes nothing', async () => {
    const result = await cli(['roles', 'grant', '--school', 'default', '--user', 'alex', '--role', 'superuser']);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/--role must be one of coordinator, dsl, deputy-dsl, management, headteacher, governor, chair-of-governors/);
    const staff = await cli(['roles', 'grant', '--school', 'default', '--user', 'alex', '--role', 'staff']);
    expect(staff.code).not.toBe(0);
  });

  it('an unknown school or a missing --user exits non-zero with a clear message', async () => {
    const noSchool = await cli(['roles', 'grant', '--school', 'nowhere', '--user', 'alex', '--role', 'dsl']);
    expect(noSchool.code).not.toBe(0);
    expect(noSchool.stderr).toMatch(/no school "nowhere"; register it with "schools add"/);
    const noUser = await cli(['roles', 'grant', '--school', 'default', '--role', 'dsl']);
    expect(noUser.code).not.toBe(0);
    expect(noUser.stderr).toMatch(/--user is required/);
  });

  describe('with the server running on the same data folder', () => {
    let running: RunningApp;
    let connector: FakeConnector;
    beforeAll(async () => {
      connector = await startFakeConnector();
      running = await startApp({ ROLE_CACHE_SECONDS: '0' }, { dataDir });
    });
    afterAll(async () => {
      await running.app.close();
      await connector.close();
    });

    const whoami = async (userId: string) => {
      const before = connector.activities.length;
      await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, text: 'whoami', userId }));
      const [reply] = (await connector.waitFor(before + 1)).slice(before);
      return cardText(cardOf(reply!.activity));
    };

    it('whoami shows a role granted and then revoked from the command line', async () => {
      expect(await whoami('robin')).toMatch(/Roles: staff$/m);
      expect((await cli(['roles', 'grant', '--school', 'default', '--user', 'robin', '--role', 'coordinator'])).code).toBe(0);
      expect(await whoami('robin')).toMatch(/Roles: staff, coordinator$/m);
      expect((await cli(['roles', 'revoke', '--school', 'default', '--user', 'robin', '--role', 'coordinator'])).code).toBe(0);
      expect(await whoami('robin')).toMatch(/Roles: staff$/m);
    });
  });
});

describe('policies from the command line', () => {
  it('importing the same folder twice stores nothing new the second time', async () => {
    expect((await cli(['schools', 'add', '--id', 'imports', '--name', 'Import School'])).code).toBe(0);
    const first = await cli(['policies', 'import', policiesDir, '--school', 'imports']);
    expect(first.code).toBe(0);
    const firstReport = JSON.parse(first.stdout);
    expect(firstReport.added.length).toBeGreaterThan(3);
    expect(firstReport.unchanged).toEqual([]);

    const second = await cli(['policies', 'import', policiesDir, '--school', 'imports']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({ added: [], updated: [], unchanged: [...firstReport.added].sort() });

    const listed = await cli(['policies', 'list', '--school', 'imports']);
    expect(listed.stdout.trim().split('\n')).toHaveLength(firstReport.added.length);
  });

  it('a broken file is named with its line on standard error, and the others are imported', async () => {
    const dir = path.join(workDir, 'broken-pack');
    await mkdir(dir, { recursive: true });
    await copyFile(path.join(policiesDir, 'mobile-and-personal-devices.md'), path.join(dir, 'mobile-and-personal-devices.md'));
    await copyFile(path.join(policiesDir, 'generative-ai.md'), path.join(dir, 'generative-ai.md'));
    await writeFile(path.join(dir, 'no-title.md'), '\n\nJust some text with no title line.\n\n## A section\n\nMore text.\n');
    await writeFile(path.join(dir, 'bad-front-matter.md'), '---\nowner: management\nreview: [2027-05-01\n---\n# Bad Front Matter\n\nText.\n');
    expect((await cli(['schools', 'add', '--id', 'broken', '--name', 'Broken Pack School'])).code).toBe(0);

    const result = await cli(['policies', 'import', dir, '--school', 'broken']);
    expect(result.code).not.toBe(0);
    expect(JSON.parse(result.stdout).added.sort()).toEqual(['generative-ai', 'mobile-and-personal-devices']);
    expect(result.stderr).toMatch(/not imported: no-title\.md:3: no "# Title" line/);
    expect(result.stderr).toMatch(/not imported: bad-front-matter\.md:\d+: front matter is not valid YAML/);
  });
});

describe('answer: the evaluation interface', () => {
  it('prints exactly one JSON line per input line, an invalid line included', async () => {
    const input = [
      JSON.stringify({ id: 'q1', question: 'can pupils use phones in class?' }),
      'this line is not JSON',
      JSON.stringify({ id: 'q3', question: 'a pupil told me someone online asked her for photos' }),
      JSON.stringify({ id: 'q4' }),
      JSON.stringify({ id: 'q5', question: 'when is the christmas party' }),
    ];
    const result = await runCli(['answer', '--policies', 'policies'], { cwd: repoRoot, input: input.join('\n') + '\n' });
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(input.length);
    const answers = lines.map((line) => JSON.parse(line));
    for (const answer of answers) expect(Object.keys(answer).sort()).toEqual(['abstained', 'confidence', 'id', 'intent', 'section']);
    expect(answers.map((a) => a.id)).toEqual(['q1', null, 'q3', 'q4', 'q5']);
    expect(answers[0]).toMatchObject({ intent: 'question', abstained: false, section: expect.stringMatching(/^mobile-and-personal-devices#/) });
    expect(answers[1]).toMatchObject({ abstained: true, section: null });
    expect(answers[2]).toMatchObject({ intent: 'incident' });
    expect(result.stderr).toMatch(/line 2: not JSON/);
  });
});

describe('chat: the bot in the terminal', () => {
  it('answers whoami and a question with a citation, then ends with the input', async () => {
    const result = await cli(['chat', '--user', 'alex'], 'whoami\nphones in class?\n');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/terminal chat as "alex"/);
    expect(result.stdout).toMatch(/User id: alex/);
    expect(result.stdout).toMatch(/Roles: staff, coordinator/);
    expect(result.stdout).toMatch(/Mobile (Phones )?and Personal Devices.*version \d{4}/i);
    expect(result.stdout).toMatch(/^\s*\[\d+\] Ask the coordinator$/m);
    noLogLines(result.stdout);
  });
});
