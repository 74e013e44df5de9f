/**
 * The playground's fixed demo people, one per point of view the product has. Each has a fixed user
 * id (and so one personal chat with the bot, as in Teams); outside production their roles are
 * granted in the default school when the server starts. They exist only in the playground.
 */
import type { Role } from '../../bot/roles.ts';

export interface PlaygroundIdentity {
  /** Short name used in the page's URL (`/?as=coordinator`). */
  key: string;
  /** The user id the bot sees. */
  userId: string;
  /** Display name, as Teams would send it. */
  name: string;
  /** What the identity switcher shows. */
  label: string;
  /** Roles granted outside production (everyone is staff). */
  roles: Role[];
}

export const playgroundIdentities: readonly PlaygroundIdentity[] = [
  { key: 'teacher', userId: 'playground-teacher', name: 'Tess Teacher', label: 'Teacher (staff)', roles: [] },
  { key: 'coordinator', userId: 'playground-coordinator', name: 'Casey Coordinator', label: 'E-safety coordinator', roles: ['coordinator'] },
  { key: 'dsl', userId: 'playground-dsl', name: 'Dana Safeguarding', label: 'Designated safeguarding lead (DSL)', roles: ['dsl'] },
  { key: 'management', userId: 'playground-management', name: 'Morgan Manager', label: 'Management team member', roles: ['management'] },
];

const CONVERSATION_PREFIX = 'playground-chat-';

/** Each identity's one personal conversation with the bot. */
export function conversationIdOf(identity: PlaygroundIdentity): string {
  return `${CONVERSATION_PREFIX}${identity.key}`;
}

export function identityByUserId(userId: string | undefined): PlaygroundIdentity | undefined {
  return playgroundIdentities.find((identity) => identity.userId === userId);
}

export function identityByKey(key: string | undefined): PlaygroundIdentity | undefined {
  return playgroundIdentities.find((identity) => identity.key === key);
}

export function identityByConversationId(conversationId: string): PlaygroundIdentity | undefined {
  if (!conversationId.startsWith(CONVERSATION_PREFIX)) return undefined;
  return identityByKey(conversationId.slice(CONVERSATION_PREFIX.length));
}
