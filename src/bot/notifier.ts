/**
 * Proactive messages: the core says whom to tell and what; the adapter for that person's platform
 * knows how. Adapters register a sender per platform at wiring time.
 */
import { isUpdatable, type MessageRefs, type UpdateSlot } from '../delivery/message-refs.ts';
import { DeliveryError } from '../delivery/types.ts';
import type { Logger } from '../logger.ts';
import type { Directory, UserRecord } from './directory.ts';
import type { Platform } from './inbound.ts';
import type { Reply } from './reply.ts';

/**
 * Sends replies into a stored conversation reference. Throws when the platform refuses. `updates`,
 * when given, is how cards with an updateKey replace the person's earlier message (src/delivery/message-refs.ts).
 */
export type PlatformSender = (reference: unknown, replies: Reply[], updates?: UpdateSlot) => Promise<void>;

export interface DeliveryResult {
  userId: string;
  delivered: boolean;
  reason?: string;
}

export class Notifier {
  readonly #senders = new Map<Platform, PlatformSender>();
  constructor(private readonly directory: Directory, private readonly log: Logger, private readonly messageRefs?: MessageRefs) {}

  register(platform: Platform, sender: PlatformSender): void {
    this.#senders.set(platform, sender);
  }

  /** With the school, a card with an updateKey replaces the person's earlier one instead of adding a message. */
  async sendToUser(user: UserRecord, replies: Reply[], school?: string): Promise<DeliveryResult> {
    const sender = this.#senders.get(user.platform);
    if (!user.reference) return { userId: user.id, delivered: false, reason: 'no conversation with this person yet' };
    if (!sender) return { userId: user.id, delivered: false, reason: `${user.platform} is not connected` };
    try {
      await sender(user.reference, replies, this.#updates(user, replies, school));
      return { userId: user.id, delivered: true };
    } catch (error) {
      this.log.warn({ err: { message: (error as Error).message }, platform: user.platform }, 'proactive message not delivered');
      return { userId: user.id, delivered: false, reason: (error as Error).message };
    }
  }

  /** Whether a proactive message can reach this person: a stored conversation on a connected platform. */
  canReach(user: UserRecord): boolean {
    return Boolean(user.reference) && this.#senders.has(user.platform);
  }

  /**
   * For the outbox: sends, or throws a DeliveryError saying whether to retry. Adapters classify
   * their platform's refusals; anything else they throw the outbox classifies by its HTTP status
   * or network error code (src/delivery/classify.ts).
   */
  async deliver(user: UserRecord, replies: Reply[], school?: string): Promise<void> {
    if (!user.reference) throw new DeliveryError('permanent', 'no conversation with this person yet');
    const sender = this.#senders.get(user.platform);
    if (!sender) throw new DeliveryError('permanent', `${user.platform} is not connected`);
    await sender(user.reference, replies, this.#updates(user, replies, school));
  }

  #updates(user: UserRecord, replies: Reply[], school: string | undefined): UpdateSlot | undefined {
    return school && this.messageRefs && replies.some(isUpdatable) ? this.messageRefs.slot(school, user.id) : undefined;
  }

  async sendToUserId(school: string, userId: string, replies: Reply[]): Promise<DeliveryResult> {
    const user = await this.directory.getUser(school, userId);
    if (!user) return { userId, delivered: false, reason: 'unknown user' };
    return this.sendToUser(user.data, replies, school);
  }
}
