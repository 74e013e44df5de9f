import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/app.ts';
import { runCli } from './helpers/cli.ts';

let dir: string;
const env = () => ({ DATA_DIR: path.join(dir, 'data'), POLICIES_DIR: path.join(repoRoot, 'policies'), LOG_LEVEL: 'warn' });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esafety-acks-'));
  await runCli(['roles', 'grant', '--school', 'default', '--user', 'teacher-1', '--role', 'governor'], { cwd: dir, env: env() });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('publishing from the command line', () => {
  it('publishes the current version to everyone known and reports how many were queued', async () => {
    const result = await runCli(['policies', 'publish', 'staff-acceptable-use', '--due', '2099-12-31'], { cwd: dir, env: env() });
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary.campaign).toMatch(/^camp-staff-acceptable-use-/);
    expect(summary.queued).toBeGreaterThanOrEqual(1);
  });

  it('exports who has accepted as CSV for an inspection', async () => {
    const result = await runCli(['policies', 'acks', '--doc', 'staff-acceptable-use'], { cwd: dir, env: env() });
    expect(result.code).toBe(0);
    const [header, ...rows] = result.stdout.trim().split('\n');
    expect(header).toBe('"document","version","content_hash","user_id","name","status","accepted_at","platform"');
    expect(rows.some((row) => row.includes('"teacher-1"') && row.includes('"outstanding"'))).toBe(true);
  });

  it('refuses a bad due date, an unknown document and an unknown group clearly', async () => {
    const badDate = await runCli(['policies', 'publish', 'staff-acceptable-use', '--due', '31/12/2099'], { cwd: dir, env: env() });
    expect(badDate.code).not.toBe(0);
    expect(badDate.stderr).toMatch(/due date must look like/);
    const unknown = await runCli(['policies', 'publish', 'no-such-policy', '--due', '2099-12-31'], { cwd: dir, env: env() });
    expect(unknown.stderr).toMatch(/No policy "no-such-policy"/);
    const group = await runCli(['policies', 'publish', 'staff-acceptable-use', '--due', '2099-12-31', '--audience', 'cooks'], { cwd: dir, env: env() });
    expect(group.stderr).toMatch(/--audience must be all or groups/);
  });
});
