/**
 * Cards that change in place (a progress card): a card with `updateKey` sent to someone replaces
 * the message that carried the last card with that key in the same conversation, instead of adding
 * a new message each time. The platform's message id is remembered in the school's partition:
 *
 * | kind | partition | id | what |
 * |---|---|---|---|
 * | `message-ref` | school | `<user id>:<updateKey>` | the platform, the conversation and the message (Teams: the activity id; Slack: channel and ts) |
 *
 * The core names the school and the person (`MessageRefs.slot`); the adapter says how to post and
 * update on its platform (`MessageSurface`). Only replies with an `updateKey` cost store operations:
 * one read, and one write when a new message is posted. The references are a convenience: when the
 * store cannot be read or written the card is simply posted as a new message.
 */
import type { Logger } from '../logger.ts';
import type { Reply } from '../bot/reply.ts';
import type { Store } from '../store/store.ts';

/** What an adapter can do with messages in one conversation. */
export interface MessageSurface<M = unknown> {
  /** The platform and its conversation id: a stored message elsewhere cannot be updated from here. */
  platform: string;
  conversation: string;
  /** Posts replies the ordinary way. */
  post(replies: Reply[]): Promise<void>;
  /** Posts one card that may be updated later; its message id, or undefined when the platform gives none. */
  postUpdatable(reply: Reply): Promise<M | undefined>;
  /** Replaces the message's content with the reply; false when the message is gone (deleted), so a new one is posted instead. */
  update(message: M, reply: Reply): Promise<boolean>;
}

/** The person's remembered messages, bound to a school: handed to the adapter that sends to them. */
export interface UpdateSlot {
  deliver<M>(surface: MessageSurface<M>, replies: Reply[]): Promise<void>;
}

export interface MessageRef<M = unknown> {
  platform: string;
  conversation: string;
  message: M;
  at: string;
}

export const isUpdatable = (reply: Reply): reply is Extract<Reply, { type: 'card' }> & { card: { updateKey: string } } =>
  reply.type === 'card' && Boolean(reply.card.updateKey);

/** Sends through the slot when there is one and a reply may update an earlier message; otherwise posts as always (no store operation). */
export async function deliverReplies<M>(surface: MessageSurface<M>, replies: Reply[], updates?: UpdateSlot): Promise<void> {
  if (updates && replies.some(isUpdatable)) await updates.deliver(surface, replies);
  else await surface.post(replies);
}

const messageRefKey = (school: string, owner: string, updateKey: string) => ({ kind: 'message-ref', school, id: `${owner}:${updateKey}` });

export class MessageRefs {
  /**
   * The card being placed for each reference in this process: a second card with the same key waits
   * for the first, so when the message was deleted only the first posts a new one and the second
   * updates it (two posts would leave an older card that never changes again). Across instances
   * the same can still happen, rarely; the next update then lands on the newer message.
   */
  readonly #placing = new Map<string, Promise<void>>();
  constructor(private readonly store: Store, private readonly log: Logger) {}

  /** The slot for cards to `owner` (a user id in the school). */
  slot(school: string, owner: string): UpdateSlot {
    return { deliver: (surface, replies) => this.#deliver(school, owner, surface, replies) };
  }

  async get<M>(school: string, owner: string, updateKey: string): Promise<MessageRef<M> | undefined> {
    return (await this.store.get<MessageRef<M>>(messageRefKey(school, owner, updateKey)))?.data;
  }

  async #deliver<M>(school: string, owner: string, surface: MessageSurface<M>, replies: Reply[]): Promise<void> {
    // In order: ordinary replies are posted together, each updatable card on its own.
    let ordinary: Reply[] = [];
    const flush = async () => {
      if (ordinary.length) await surface.post(ordinary);
      ordinary = [];
    };
    for (const reply of replies) {
      if (!isUpdatable(reply)) {
        ordinary.push(reply);
        continue;
      }
      await flush();
      await this.#oneAtATime(`${school}\u0000${owner}\u0000${reply.card.updateKey}`, () => this.#place(school, owner, surface, reply));
    }
    await flush();
  }

  async #oneAtATime(key: string, work: () => Promise<void>): Promise<void> {
    const before = this.#placing.get(key);
    const mine = (before ?? Promise.resolve()).catch(() => undefined).then(work);
    const settled = mine.catch(() => undefined);
    this.#placing.set(key, settled);
    try {
      await mine;
    } finally {
      if (this.#placing.get(key) === settled) this.#placing.delete(key);
    }
  }

  async #place<M>(school: string, owner: string, surface: MessageSurface<M>, reply: Reply & { card: { updateKey: string } }): Promise<void> {
    const key = messageRefKey(school, owner, reply.card.updateKey);
    const known = await this.store.get<MessageRef<M>>(key).catch((error: unknown) => {
      this.log.warn({ err: { name: (error as Error).name } }, 'message reference not read; the card is posted as a new message');
      return undefined;
    });
    const ref = known?.data;
    // A message in another conversation (the person asked in a channel, then in their chat) is left alone.
    if (ref && ref.platform === surface.platform && ref.conversation === surface.conversation && (await surface.update(ref.message, reply))) return;
    const message = await surface.postUpdatable(reply);
    if (message === undefined) return;
    const data: MessageRef<M> = { platform: surface.platform, conversation: surface.conversation, message, at: new Date().toISOString() };
    await this.store.upsert(key, data).catch((error: unknown) => {
      this.log.warn({ err: { name: (error as Error).name } }, 'message reference not kept; the next card will be a new message');
    });
  }
}
