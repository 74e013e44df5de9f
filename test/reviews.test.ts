import { describe, expect, it } from 'vitest';
import { Directory } from '../src/bot/directory.ts';
import { Notifier } from '../src/bot/notifier.ts';
import { reviewStatus, sendReviewReminders } from '../src/bot/features/acknowledgements/reviews.ts';
import { DirectQueue } from '../src/delivery/direct-queue.ts';
import { silentLogger } from '../src/logger.ts';
import { PolicyLibrary } from '../src/policies/library.ts';
import { parsePolicy } from '../src/policies/markdown.ts';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Reply } from '../src/bot/reply.ts';

const policy = (review: string, owner = 'dsl') => parsePolicy('incident-procedure.md', `---\nowner: ${owner}\nreview: ${review}\n---\n# Incident Procedure\n\n## First steps\nTell the DSL.\n`);

describe('policy review reminders', () => {
  it('names the threshold a review date has reached', () => {
    const now = new Date('2026-11-24T10:00:00Z');
    expect(reviewStatus('2026-12-20', now).threshold).toBe('due-30');
    expect(reviewStatus('2026-11-30', now).threshold).toBe('due-7');
    expect(reviewStatus('2026-11-24', now).threshold).toBe('due-today');
    expect(reviewStatus('2026-11-01', now).threshold).toBe('overdue');
    expect(reviewStatus('2027-06-01', now).threshold).toBeUndefined();
    expect(reviewStatus(undefined, now).label).toBe('no review date set');
  });

  it('reminds the owner role once per threshold, only in working hours', async () => {
    const store = createSqliteStore({ file: ':memory:' });
    const directory = new Directory(store, { cacheSeconds: 0 });
    const library = new PolicyLibrary(store);
    const notifier = new Notifier(directory, silentLogger());
    const sent: Array<{ reference: unknown; replies: Reply[] }> = [];
    notifier.register('teams', async (reference, replies) => void sent.push({ reference, replies }));
    await directory.upsertSchool({ id: 'school-a', name: 'School A' });
    await directory.noteUserSeen('school-a', { id: 'dsl-1', platform: 'teams', reference: { conversation: { id: 'c1' } } });
    await directory.grantRole('school-a', 'dsl-1', 'dsl');
    await library.import('school-a', [policy('2026-11-30')], 'test');
    const deps = { store, library, directory, queue: new DirectQueue(notifier) };
    const school = { id: 'school-a', timeZone: 'Europe/London' };

    expect(await sendReviewReminders(deps, school, new Date('2026-11-28T10:00:00Z'))).toBe(0); // a Saturday
    expect(await sendReviewReminders(deps, school, new Date('2026-11-24T10:00:00Z'))).toBe(1);
    expect(await sendReviewReminders(deps, school, new Date('2026-11-25T11:00:00Z'))).toBe(0); // same threshold again
    expect(sent).toHaveLength(1);
    expect(JSON.stringify(sent[0]!.replies)).toMatch(/Incident Procedure.*review due 2026-11-30/);
    await store.close();
  });
});
