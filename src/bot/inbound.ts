/**
 * The normalised inbound message every adapter produces. The core never sees an Activity, a Slack
 * payload or a terminal line: only this.
 */
import { z } from 'zod';

export const platforms = ['teams', 'slack', 'terminal', 'playground'] as const;
export type Platform = (typeof platforms)[number];

/** A form or button submission. `route` names the handler; the rest is the form's data. */
export const submissionSchema = z.looseObject({ route: z.string().min(1).max(100) });
export type Submission = z.infer<typeof submissionSchema>;

export interface Inbound {
  platform: Platform;
  /** Teams tenant id or Slack team id; undefined for the Emulator and the terminal (DEFAULT_SCHOOL). */
  tenantId?: string;
  user: { id: string; name?: string };
  conversation: { id: string; kind: 'personal' | 'group' | 'channel' };
  text?: string;
  submission?: Submission;
  /** The team a channel message came from (Teams), with what its roster reader needs: "sync staff" there follows it. */
  team?: { id: string; access: Record<string, string> };
  /** The platform's own conversation reference, kept so the bot can message this person later. */
  reference?: unknown;
  /** Files or images the person sent. The bot never accepts them: see Bot. */
  attachmentCount?: number;
  /** One id per turn, in every log line of that turn and in any apology the user sees. */
  correlationId: string;
}

/** Messages longer than this are refused with a clear answer rather than processed. */
export const MAX_TEXT_LENGTH = 4000;
