/**
 * The platform-neutral bot: an Inbound in, Replies out. Resolves the school and the user once,
 * loads the conversation state, routes, saves the state if a handler changed it, and turns any
 * error into a short apology carrying the turn's reference.
 */
import { asAppError, isAppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { Directory } from './directory.ts';
import { MAX_TEXT_LENGTH, type Inbound } from './inbound.ts';
import { text, type Reply } from './reply.ts';
import type { Router } from './router.ts';
import type { ConversationState, Turn } from './turn.ts';

export interface BotOptions {
  store: Store;
  directory: Directory;
  router: Router;
  defaultSchool: string;
  log: Logger;
}

const stateKey = (school: string, inbound: Inbound) => ({
  kind: 'conversation',
  school,
  id: `${inbound.platform}:${inbound.conversation.id}:${inbound.user.id}`,
});

export class Bot {
  constructor(private readonly options: BotOptions) {}

  async handle(inbound: Inbound): Promise<Reply[]> {
    const log = this.options.log.child({ correlationId: inbound.correlationId, platform: inbound.platform });
    try {
      return await this.#turn(inbound, log);
    } catch (error) {
      const appError = asAppError(error);
      if (appError.code === 'forbidden' || appError.code === 'validation_failed' || appError.code === 'not_found' || appError.code === 'precondition_failed') {
        log.info({ code: appError.code }, 'turn refused');
        return [text(appError.message)];
      }
      // The cause may quote user input; log its code and stack frames only, never its message text.
      log.error({ code: appError.code, stack: appError.stack?.split('\n').slice(1, 6).join('\n') }, 'turn failed');
      return [text(`Sorry, something went wrong on our side and nothing was saved from that message. If it keeps happening, tell your IT team the reference ${inbound.correlationId}.`)];
    }
  }

  async #turn(inbound: Inbound, log: Logger): Promise<Reply[]> {
    const { directory, store } = this.options;
    if ((inbound.text?.length ?? 0) > MAX_TEXT_LENGTH) {
      return [text(`That message is too long for me (${inbound.text!.length} characters; the limit is ${MAX_TEXT_LENGTH}). Please shorten it, or split it into a few messages.`)];
    }
    const schoolId = await this.#schoolFor(inbound);
    const school = schoolId ? await directory.getSchool(schoolId) : undefined;
    if (!school) {
      log.info({ tenant: inbound.tenantId ? 'present' : 'absent' }, 'message from a school that is not registered');
      return [text('Hello! This school is not set up yet, so I cannot help here. Please ask your IT team to register it (esafety-bot schools add).')];
    }
    const { user, roles } = await directory.noteUserSeen(school.id, {
      id: inbound.user.id,
      platform: inbound.platform,
      name: inbound.user.name,
      reference: inbound.reference,
    });
    const key = stateKey(school.id, inbound);
    const stored = await store.get<ConversationState>(key);
    const turn: Turn = { inbound, school, user, roles, state: structuredClone(stored?.data ?? {}), stateChanged: false, log: log.child({ school: school.id }) };
    const route = this.options.router.select(turn);
    if (!route) {
      turn.log.info({ route: inbound.submission?.route }, 'submission for an unknown route');
      return [text("Sorry, I didn't recognise that button or form. It may come from an old message: please start again.")];
    }
    turn.log.info({ route: route.name }, 'turn');
    const replies = await route.handle(turn);
    if (turn.stateChanged) {
      try {
        if (stored) await store.replace(key, turn.state, stored.etag);
        else await store.create(key, turn.state);
      } catch (error) {
        if (isAppError(error, 'precondition_failed') || isAppError(error, 'conflict')) {
          // Two turns of one conversation raced (a double click): the other one's state stands.
          turn.log.warn({ route: route.name }, 'conversation state changed concurrently; this turn\'s change dropped');
        } else throw error;
      }
    }
    return replies;
  }

  async #schoolFor(inbound: Inbound): Promise<string | undefined> {
    if (!inbound.tenantId) return this.options.defaultSchool;
    if (inbound.platform === 'teams' || inbound.platform === 'slack') {
      return this.options.directory.schoolForTenant(inbound.platform, inbound.tenantId);
    }
    return this.options.defaultSchool;
  }
}
