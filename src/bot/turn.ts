/**
 * What a handler sees: the inbound message, the resolved school and user (with roles), the
 * conversation's state, and the services. Resolved once per turn, before routing.
 */
import type { Logger } from '../logger.ts';
import type { School, UserRecord } from './directory.ts';
import type { Inbound } from './inbound.ts';
import type { Role } from './roles.ts';

export interface ConversationState {
  /** An active dialog (an incident report in progress on a text-only surface, an escalation reply). */
  dialog?: { name: string; step: number; values: Record<string, unknown>; draftId?: string };
}

export interface Turn {
  inbound: Inbound;
  school: School;
  user: UserRecord;
  roles: Role[];
  state: ConversationState;
  /** Set by a handler that changed the state; the bot saves it after the turn. */
  stateChanged: boolean;
  log: Logger;
}
