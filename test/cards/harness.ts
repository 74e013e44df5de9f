/**
 * The real bot core (createCore: store, directory, policy library, every feature's routes) on a
 * temporary SQLite store with the sample policies, driven as the terminal would drive it. Cards in
 * the catalogue come out of here the way users meet them: replies to a message or a button, and
 * proactive messages (escalations, alerts) captured from the notifier.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { platforms } from '../../src/bot/inbound.ts';
import type { Card, Reply } from '../../src/bot/reply.ts';
import type { Role } from '../../src/bot/roles.ts';
import { loadSettings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { createCore, prepareDefaultSchool, type CoreParts } from '../../src/main.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface Delivered {
  to: string;
  replies: Reply[];
}

export class CardHarness {
  /** The default school, where the sample policies are imported. */
  readonly school: string;
  /** Proactive messages, in order. */
  readonly delivered: Delivered[] = [];
  /** Every card kind the bot produced, in replies or proactive messages (the completeness check reads it). */
  readonly kinds = new Set<string>();
  /** Display names by user id: a later turn without one keeps the name (as Teams sends it every time). */
  readonly #names = new Map<string, string>();

  private constructor(readonly core: CoreParts, private readonly dataDir: string) {
    this.school = core.settings.defaultSchool.id;
    // Every platform: a role granted before someone's first message leaves their record on the
    // directory's default platform, whatever platform they then write from.
    for (const platform of platforms) {
      core.notifier.register(platform, async (reference, replies) => {
        this.note(replies);
        this.delivered.push({ to: (reference as { user: string }).user, replies });
      });
    }
  }

  static async start(): Promise<CardHarness> {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'esafety-cards-'));
    const settings = loadSettings({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dataDir, POLICIES_DIR: path.join(repoRoot, 'policies') });
    const log = silentLogger();
    const core = await createCore(settings, log);
    await prepareDefaultSchool(core, log);
    return new CardHarness(core, dataDir);
  }

  private note(replies: Reply[]): void {
    for (const reply of replies) if (reply.type === 'card') this.kinds.add(reply.card.kind);
  }

  private async turn(user: string, message: { text?: string; submission?: { route: string; [key: string]: unknown } }, name?: string): Promise<Reply[]> {
    if (name) this.#names.set(user, name);
    const replies = await this.core.bot.handle({
      platform: 'terminal',
      user: { id: user, name: this.#names.get(user) ?? user },
      conversation: { id: `terminal-${user}`, kind: 'personal' },
      reference: { conversationId: `terminal-${user}`, user },
      correlationId: randomUUID(),
      ...message,
    });
    this.note(replies);
    return replies;
  }

  /** A typed message from `user` (who is then known, and reachable for proactive messages). */
  say(user: string, text: string, name?: string): Promise<Reply[]> {
    return this.turn(user, { text }, name);
  }

  /** A button or form submission: the action's data plus the card's inputs. */
  submit(user: string, data: { route: string; [key: string]: unknown }): Promise<Reply[]> {
    return this.turn(user, { submission: data });
  }

  async grant(user: string, ...roles: Role[]): Promise<void> {
    for (const role of roles) await this.core.directory.grantRole(this.school, user, role);
  }

  /** Proactive messages sent to `user` since `since` (an index into `delivered`). */
  deliveredTo(user: string, since = 0): Reply[] {
    return this.delivered.slice(since).filter((d) => d.to === user).flatMap((d) => d.replies);
  }

  async close(): Promise<void> {
    await this.core.store.close();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** The card of `kind` among replies; throws saying what came instead. */
export function cardOf(replies: Reply[], kind: string): Card {
  const found = replies.find((reply): reply is Extract<Reply, { type: 'card' }> => reply.type === 'card' && reply.card.kind === kind);
  if (!found) {
    const got = replies.map((reply) => (reply.type === 'card' ? `card ${reply.card.kind}` : `text "${reply.text.slice(0, 120)}"`));
    throw new Error(`expected a card of kind ${kind}; the bot sent ${got.length ? got.join('; ') : 'nothing'}`);
  }
  return found.card;
}

/** The submit action titled `title` on a card; throws naming the titles there are. */
export function actionData(card: Card, title: string): { route: string; [key: string]: unknown } {
  const action = card.actions?.find((a) => a.title === title);
  if (!action || action.type !== 'submit') throw new Error(`${card.kind} has no button "${title}" (it has: ${card.actions?.map((a) => a.title).join(', ') ?? 'none'})`);
  return action.data;
}
