/**
 * Messages in the app's direct message with a person: posting, and updating a card in place
 * (chat.update with the channel and ts chat.postMessage answered) for cards with an updateKey.
 */
import type { webApi } from '@slack/bolt';
import type { Reply } from '../../bot/reply.ts';
import type { MessageSurface } from '../../delivery/message-refs.ts';
import type { SlackMessage } from './block-kit.ts';

export interface SlackMessageRef {
  channel: string;
  ts: string;
}

/** Posts one message in a channel, never unfurling links (a policy link is not a preview). The one place the bot calls chat.postMessage. */
export function postSlackMessage(client: webApi.WebClient, token: string | undefined, channel: string, message: SlackMessage) {
  return client.chat.postMessage({ token, channel, text: message.text, blocks: message.blocks, unfurl_links: false, unfurl_media: false });
}

/** chat.update's answers when the message is no longer there to update: post a new one instead. */
const GONE = new Set(['message_not_found', 'cant_update_message', 'edit_window_closed']);

export function slackSurface(options: {
  client: webApi.WebClient;
  token?: string;
  /** The DM channel (D…). */
  channel: string;
  /** How this request posts ordinary replies (chat.postMessage, or the response_url of a button). */
  post(replies: Reply[]): Promise<void>;
  /** The message for one reply (a card with a form is stored first so its button can open it). */
  render(reply: Reply): Promise<SlackMessage>;
}): MessageSurface<SlackMessageRef> {
  const { client, token, channel } = options;
  return {
    platform: 'slack',
    conversation: channel,
    post: options.post,
    postUpdatable: async (reply) => {
      const message = await options.render(reply);
      const posted = await postSlackMessage(client, token, channel, message);
      return typeof posted.ts === 'string' ? { channel: typeof posted.channel === 'string' ? posted.channel : channel, ts: posted.ts } : undefined;
    },
    update: async (ref, reply) => {
      const message = await options.render(reply);
      try {
        await client.chat.update({ token, channel: ref.channel, ts: ref.ts, text: message.text, blocks: message.blocks });
        return true;
      } catch (error) {
        const e = error as { code?: string; data?: { error?: string } };
        if (e.code === 'slack_webapi_platform_error' && GONE.has(String(e.data?.error))) return false;
        throw error;
      }
    },
  };
}
