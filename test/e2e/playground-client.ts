/**
 * A Direct Line client for tests: what the playground page does, over plain HTTP (no browser).
 * Starts a playground person's conversation, posts activities as Web Chat does, polls with watermarks.
 */
import { expect } from 'vitest';

export type Activity = Record<string, any>;

export interface DirectLineConversation {
  conversationId: string;
  /** Activities read so far (in order), and the watermark after them. */
  seen: Activity[];
  watermark: string;
  /** Posts a message (text or a card submission) as Web Chat would; resolves with the HTTP response body. */
  post(activity: { text?: string; value?: unknown; clientActivityID?: string; [key: string]: unknown }): Promise<{ status: number; body: any }>;
  /** Reads what arrived since the last poll. */
  poll(): Promise<Activity[]>;
  /** Polls until an activity arriving after `since` (an index into `seen`) matches, or fails after `timeoutMs`. */
  waitFor(match: (activity: Activity) => boolean, options?: { since?: number; timeoutMs?: number; what?: string }): Promise<Activity>;
}

let counter = 0;

export function directLine(baseUrl: string) {
  const domain = `${baseUrl}/v3/directline`;
  return {
    domain,
    async start(userId: string): Promise<DirectLineConversation> {
      const response = await fetch(`${domain}/conversations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: { id: userId } }),
      });
      expect(response.status, await response.clone().text()).toBe(201);
      const { conversationId } = (await response.json()) as { conversationId: string };
      return conversationFor(domain, conversationId);
    },
    resume: (conversationId: string, watermark = '') => conversationFor(domain, conversationId, watermark),
  };
}

function conversationFor(domain: string, conversationId: string, initialWatermark = ''): DirectLineConversation {
  const conversation: DirectLineConversation = {
    conversationId,
    seen: [],
    watermark: initialWatermark,
    async post(activity) {
      const { clientActivityID, ...rest } = activity;
      const response = await fetch(`${domain}/conversations/${conversationId}/activities`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'message',
          from: { id: 'whoever-the-page-says', role: 'user' },
          channelData: { clientActivityID: clientActivityID ?? `test-${Date.now()}-${++counter}`, ...(rest.value !== undefined ? { postBack: true } : {}) },
          ...rest,
        }),
      });
      return { status: response.status, body: await response.json().catch(() => undefined) };
    },
    async poll() {
      const response = await fetch(`${domain}/conversations/${conversationId}/activities?watermark=${encodeURIComponent(conversation.watermark)}`);
      expect(response.status).toBe(200);
      const group = (await response.json()) as { activities: Activity[]; watermark: string };
      conversation.watermark = group.watermark;
      conversation.seen.push(...group.activities);
      return group.activities;
    },
    async waitFor(match, options = {}) {
      const since = options.since ?? 0;
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
      for (;;) {
        const found = conversation.seen.slice(since).find(match);
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(`no ${options.what ?? 'matching activity'} in ${conversationId}; saw:\n${conversation.seen.slice(since).map(describeActivity).join('\n')}`);
        }
        await conversation.poll();
        if (!conversation.seen.slice(since).some(match)) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  };
  return conversation;
}

/** One line per activity, for failure messages. */
export function describeActivity(activity: Activity): string {
  const card = activity.attachments?.[0]?.content;
  return `${activity.from?.role}/${activity.from?.id}: ${activity.text ?? ''}${card ? ` [card: ${JSON.stringify(card).slice(0, 160)}]` : ''}${activity.value ? ` [value: ${JSON.stringify(activity.value)}]` : ''}`;
}

/** The Adaptive Card in an activity, if any. */
export function cardIn(activity: Activity): Activity | undefined {
  return activity.attachments?.find((a: Activity) => a.contentType === 'application/vnd.microsoft.card.adaptive')?.content;
}

export const fromBot = (activity: Activity) => activity.from?.role === 'bot';
