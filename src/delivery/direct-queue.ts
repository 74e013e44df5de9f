/**
 * A MessageQueue that sends at once through the notifier, for processes with no outbox worker
 * (the terminal chat, one-off commands). Not durable: the server always uses the outbox.
 */
import { randomUUID } from 'node:crypto';
import type { Notifier } from '../bot/notifier.ts';
import type { BroadcastProgress, EnqueueOptions, MessageQueue, OutboundMessage } from './types.ts';

export class DirectQueue implements MessageQueue {
  readonly #results = new Map<string, BroadcastProgress>();
  constructor(private readonly notifier: Notifier) {}

  async enqueue(school: string, messages: OutboundMessage[], options: EnqueueOptions = {}): Promise<{ broadcastId: string; count: number }> {
    const broadcastId = options.broadcastId ?? `direct-${randomUUID()}`;
    const progress: BroadcastProgress = { total: messages.length, pending: 0, inflight: 0, delivered: 0, failed: 0, cancelled: 0, failures: [] };
    for (const message of messages) {
      const result = await this.notifier.sendToUserId(school, message.recipient, message.replies);
      if (result.delivered) progress.delivered++;
      else {
        progress.failed++;
        progress.failures.push({ recipient: message.recipient, reason: result.reason ?? 'not delivered' });
      }
    }
    this.#results.set(`${school}\u0000${broadcastId}`, progress);
    return { broadcastId, count: messages.length };
  }

  async progress(school: string, broadcastId: string): Promise<BroadcastProgress> {
    return this.#results.get(`${school}\u0000${broadcastId}`) ?? { total: 0, pending: 0, inflight: 0, delivered: 0, failed: 0, cancelled: 0, failures: [] };
  }

  async cancel(): Promise<number> {
    return 0;
  }
}
