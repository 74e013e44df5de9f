/**
 * The annual review cycle: each policy's review date and owner role, reminders 30 and 7 days
 * before, on the day and weekly while overdue, sent in the school's working hours.
 */
import type { PolicyLibrary } from '../../../policies/library.ts';
import type { MessageQueue } from '../../../delivery/types.ts';
import type { Store } from '../../../store/store.ts';
import { isAppError } from '../../../errors.ts';
import { inWorkingHours } from '../../../delivery/jobs.ts';
import type { Directory } from '../../directory.ts';
import { card } from '../../reply.ts';
import { roleSchema } from '../../roles.ts';

const DAY = 86_400_000;

export function reviewStatus(review: string | undefined, now: Date): { label: string; threshold?: 'due-30' | 'due-7' | 'due-today' | 'overdue'; daysLeft?: number } {
  if (!review) return { label: 'no review date set' };
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const days = Math.round((new Date(`${review}T00:00:00Z`).getTime() - today) / DAY);
  if (days < 0) return { label: `overdue since ${review}`, threshold: 'overdue', daysLeft: days };
  if (days === 0) return { label: 'review due today', threshold: 'due-today', daysLeft: 0 };
  if (days <= 7) return { label: `review due ${review} (${days} days)`, threshold: 'due-7', daysLeft: days };
  if (days <= 30) return { label: `review due ${review} (${days} days)`, threshold: 'due-30', daysLeft: days };
  return { label: `review due ${review}`, daysLeft: days };
}


/**
 * Sends each due reminder once: a marker record per document version, threshold (and week while
 * overdue) makes a second run, or a second instance, send nothing more.
 */
export async function sendReviewReminders(deps: { store: Store; library: PolicyLibrary; directory: Directory; queue: MessageQueue }, school: { id: string; timeZone: string }, now: Date): Promise<number> {
  if (!inWorkingHours(now, school.timeZone)) return 0;
  let sent = 0;
  for (const entry of await deps.library.list(school.id)) {
    const status = reviewStatus(entry.meta.review, now);
    if (!status.threshold) continue;
    const week = status.threshold === 'overdue' ? `-w${Math.floor(-status.daysLeft! / 7)}` : '';
    const marker = { kind: 'review-reminder', school: school.id, id: `${entry.docId}@${entry.meta.review}:${status.threshold}${week}` };
    try {
      await deps.store.create(marker, { at: now.toISOString() });
    } catch (error) {
      if (isAppError(error, 'conflict')) continue;
      throw error;
    }
    const ownerRole = roleSchema.safeParse(entry.meta.owner);
    const owners = await deps.directory.usersWithRole(school.id, ownerRole.success ? [ownerRole.data] : ['coordinator']);
    if (!owners.length) continue;
    await deps.queue.enqueue(
      school.id,
      owners.map((o) => ({
        recipient: o.id,
        replies: [card({ kind: 'reviews.reminder', title: `Policy review: ${entry.title}`, tone: status.threshold === 'overdue' ? 'attention' : 'default', blocks: [{ type: 'text', text: `${entry.title} (version ${entry.version}): ${status.label}. You are its owner (${entry.meta.owner ?? 'coordinator'}). Review it, import the new version, and publish it to staff if it changed.` }] })],
      })),
      { broadcastId: `review-${marker.id}` },
    );
    sent += owners.length;
  }
  return sent;
}
