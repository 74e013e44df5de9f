/**
 * One message to many people of a school through the outbox: the entry point alerts (and the
 * broadcast benchmark) use. People the bot cannot reach yet (no conversation) are enqueued too, so
 * the outbox records them as failed with the reason, and the sender's progress shows who was missed.
 */
import type { Directory, UserRecord } from '../bot/directory.ts';
import type { Reply } from '../bot/reply.ts';
import { AppError } from '../errors.ts';
import type { EnqueueOptions, MessageQueue } from './types.ts';

export interface BroadcastOptions extends EnqueueOptions {
  /** Who gets it; everyone in the school's directory by default. */
  filter?: (user: UserRecord) => boolean;
  /** What asked for it ("alert", "policy.publish"), kept on the broadcast for reports. */
  origin?: string;
}

export async function broadcastToSchool(
  deps: { directory: Directory; queue: MessageQueue },
  school: string,
  replies: Reply[],
  options: BroadcastOptions = {},
): Promise<{ broadcastId: string; count: number }> {
  if (replies.length === 0) throw new AppError('validation_failed', 'nothing to send');
  // People a roster marked as left are kept in the directory (roles, audit) but not messaged.
  const users = (await deps.directory.listUsers(school)).filter((user) => !user.leftAt && (options.filter?.(user) ?? true));
  // `origin` rides along: the outbox keeps it on the broadcast record.
  const { filter: _filter, ...enqueueOptions } = options;
  return deps.queue.enqueue(
    school,
    users.map((user) => ({ recipient: user.id, replies })),
    enqueueOptions,
  );
}
