/**
 * The reference kept per user for proactive messages on Slack. How a failed Web API call reads to
 * the outbox (throttled, transient, permanent) is decided in one place for every platform:
 * src/delivery/classify.ts.
 */
import { z } from 'zod';

/** Kept in the user record: enough to open (or reuse) the app's direct message with the person. */
export const slackReferenceSchema = z
  .object({
    teamId: z.string().min(1).max(40),
    enterpriseId: z.string().min(1).max(40).optional(),
    userId: z.string().min(1).max(40).optional(),
    /** The app's direct message channel with the person (D…), when known. */
    channel: z.string().min(1).max(40).optional(),
  })
  .refine((reference) => reference.userId !== undefined || reference.channel !== undefined, 'needs a user id or a channel');
export type SlackReference = z.infer<typeof slackReferenceSchema>;
