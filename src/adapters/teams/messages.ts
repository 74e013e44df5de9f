/**
 * Messages in one Teams conversation (a turn's or a proactive one's): posting, and updating a card
 * in place (PUT /v3/conversations/{id}/activities/{activityId}) for cards with an updateKey.
 */
import type { Activity, TurnContext } from 'botbuilder';
import type { Reply } from '../../bot/reply.ts';
import { httpStatusOf } from '../../delivery/classify.ts';
import type { MessageSurface } from '../../delivery/message-refs.ts';

/** `render` is the adapter's Reply → Activity translation (toActivities). */
export function teamsSurface(context: TurnContext, render: (replies: Reply[]) => Partial<Activity>[]): MessageSurface<string> {
  return {
    platform: context.activity.channelId === 'playground' ? 'playground' : 'teams',
    conversation: context.activity.conversation.id,
    post: async (replies) => {
      await context.sendActivities(render(replies));
    },
    postUpdatable: async (reply) => {
      const [response] = await context.sendActivities(render([reply]));
      return response?.id || undefined;
    },
    update: async (activityId, reply) => {
      try {
        await context.updateActivity({ ...render([reply])[0], id: activityId });
        return true;
      } catch (error) {
        // Deleted by the person (or gone with the chat's history): a new message takes its place.
        if (httpStatusOf(error) === 404) return false;
        throw error;
      }
    },
  };
}
