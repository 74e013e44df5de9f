/**
 * The platform-neutral bot: an Inbound in, Replies out. Resolves the school and the user once,
 * loads the conversation state, routes, saves the state if a handler changed it, and turns any
 * error into a short apology carrying the turn's reference.
 */
import { ZodError } from 'zod';
import { asAppError, isAppError, stackFrames } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { MessageRefs, UpdateSlot } from '../delivery/message-refs.ts';
import type { Store } from '../store/store.ts';
import { measureStoreOperations, noTelemetry, type Telemetry, type TurnOutcome } from '../telemetry.ts';
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
  /** Where cards that change in place (updateKey) remember their messages; without it they are always posted anew. */
  messageRefs?: MessageRefs;
  /** One event per turn (route, platform, school, duration, store operations, outcome). */
  telemetry?: Telemetry;
}

/** A turn's replies, and (in a personal conversation) the slot through which cards with an updateKey replace their earlier message. */
export interface Response {
  replies: Reply[];
  updates?: UpdateSlot;
}

/** What a turn found out about itself, for its telemetry event (filled in as it goes). */
interface TurnFacts {
  route?: string;
  school?: string;
  outcome: TurnOutcome;
}

const stateKey = (school: string, inbound: Inbound) => ({
  kind: 'conversation',
  school,
  id: `${inbound.platform}:${inbound.conversation.id}:${inbound.user.id}`,
});

export class Bot {
  constructor(private readonly options: BotOptions) {}

  async handle(inbound: Inbound): Promise<Reply[]> {
    return (await this.respond(inbound)).replies;
  }

  /** The turn's replies and, in a personal chat, the slot for in-place updates; one telemetry event per turn. */
  async respond(inbound: Inbound): Promise<Response> {
    const telemetry = this.options.telemetry ?? noTelemetry;
    const facts: TurnFacts = { outcome: 'ok' };
    // Nothing records the event: the turn is not measured (measuring costs each turn a context).
    if (telemetry === noTelemetry) return this.#respond(inbound, facts);
    const started = performance.now();
    const { result, storeOperations } = await measureStoreOperations(() => this.#respond(inbound, facts));
    telemetry.turn({
      route: facts.route,
      platform: inbound.platform,
      school: facts.school,
      durationMs: Math.round(performance.now() - started),
      storeOperations,
      outcome: facts.outcome,
      correlationId: inbound.correlationId,
    });
    return result;
  }

  async #respond(inbound: Inbound, facts: TurnFacts): Promise<Response> {
    // Made only when a turn logs without its school (refusals, failures): the usual turn logs
    // through turn.log, made with the school in one step (two nested pino children cost several times one).
    let withoutSchool: Logger | undefined;
    const log = () => (withoutSchool ??= this.options.log.child({ correlationId: inbound.correlationId, platform: inbound.platform }));
    try {
      const replies = await this.#turn(inbound, log, facts);
      // Only a person's own chat: a card updated in a channel would change what everyone there sees.
      const updates = facts.school && this.options.messageRefs && inbound.conversation.kind === 'personal' ? this.options.messageRefs.slot(facts.school, inbound.user.id) : undefined;
      return { replies, updates };
    } catch (error) {
      return { replies: this.#failed(inbound, log(), error, facts) };
    }
  }

  #failed(inbound: Inbound, log: Logger, error: unknown, facts: TurnFacts): Reply[] {
    if (error instanceof ZodError) {
      facts.outcome = 'invalid';
      // A handler's schema refused the input (a button's or form's data from an old card, a hand-made
      // request, a command argument): the user's input, not our failure. Log where it failed, never the values.
      log.warn({ code: 'validation_failed', route: inbound.submission?.route, fields: error.issues.map((issue) => issue.path.join('.')) }, 'input refused');
      return [
        text(inbound.submission
          ? "That button or form sent something I can't use; it may come from an old message. Please start again."
          : "I couldn't use part of that message (something in it is too long or not in the form I expected). Please check it and try again."),
      ];
    }
    const appError = asAppError(error);
    if (appError.code === 'forbidden' || appError.code === 'validation_failed' || appError.code === 'not_found' || appError.code === 'precondition_failed') {
      facts.outcome = 'refused';
      log.info({ code: appError.code }, 'turn refused');
      return [text(appError.message)];
    }
    // The message may quote user input: log the error's name and stack frames only (of the original
    // error, not the wrapper), never its message text.
    const origin = appError.cause instanceof Error ? appError.cause : appError;
    log.error({ code: appError.code, name: origin.name, stack: stackFrames(origin) }, 'turn failed');
    facts.outcome = 'failed';
    (this.options.telemetry ?? noTelemetry).error({ where: 'turn', code: appError.code, name: origin.name, school: facts.school, route: facts.route, correlationId: inbound.correlationId });
    return [text(`Sorry, something went wrong on our side and nothing was saved from that message. If it keeps happening, tell your IT team the reference ${inbound.correlationId}.`)];
  }

  async #turn(inbound: Inbound, log: () => Logger, facts: TurnFacts): Promise<Reply[]> {
    const { directory, store } = this.options;
    if ((inbound.attachmentCount ?? 0) > 0 || (inbound.text?.length ?? 0) > MAX_TEXT_LENGTH) facts.outcome = 'rejected-input';
    if ((inbound.attachmentCount ?? 0) > 0) {
      // Never collect images: a report of nudes or illegal content must not put copies anywhere.
      log().info({ attachments: inbound.attachmentCount }, 'attachment refused');
      return [text('I never accept images, videos or files, and I have not kept the one you sent. For a report, describe what you saw instead, and never copy, forward or send images of children, even as evidence: keep the device as it is and tell the DSL. Please delete it from this chat.')];
    }
    if ((inbound.text?.length ?? 0) > MAX_TEXT_LENGTH) {
      return [text(`That message is too long for me (${inbound.text!.length} characters; the limit is ${MAX_TEXT_LENGTH}). Please shorten it, or split it into a few messages.`)];
    }
    const schoolId = await this.#schoolFor(inbound);
    const school = schoolId ? await directory.getSchool(schoolId) : undefined;
    if (!school) {
      facts.outcome = 'not-registered';
      log().info({ tenant: inbound.tenantId ? 'present' : 'absent' }, 'message from a school that is not registered');
      return [text('Hello! This school is not set up yet, so I cannot help here. Please ask your IT team to register it (esafety-bot schools add).')];
    }
    const { user, roles } = await directory.noteUserSeen(school.id, {
      id: inbound.user.id,
      platform: inbound.platform,
      name: inbound.user.name,
      reference: inbound.reference,
    });
    facts.school = school.id;
    const key = stateKey(school.id, inbound);
    const stored = await store.get<ConversationState>(key);
    const turn: Turn = { inbound, school, user, roles, state: structuredClone(stored?.data ?? {}), stateChanged: false, log: this.options.log.child({ correlationId: inbound.correlationId, platform: inbound.platform, school: school.id }) };
    const route = this.options.router.select(turn);
    if (!route) {
      facts.outcome = 'unknown-route';
      turn.log.info({ route: inbound.submission?.route }, 'submission for an unknown route');
      return [text("Sorry, I didn't recognise that button or form. It may come from an old message: please start again.")];
    }
    facts.route = route.name;
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
