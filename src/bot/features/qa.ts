/**
 * Asking the policies: the answer quoted and cited, or an honest "not covered" with the offer to
 * ask the coordinator; the coordinator's reply reaches the asker and can be saved for everyone;
 * helpful / not helpful feedback; the questions report for the annual review.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AppError, isAppError } from '../../errors.ts';
import { decideAnswer, type AnswerDecision } from '../../policies/answer.ts';
import { SAVED_ANSWER_DOC, type PolicyLibrary } from '../../policies/library.ts';
import type { IndexedSection } from '../../policies/search.ts';
import type { Store } from '../../store/store.ts';
import type { AuditLog } from '../audit.ts';
import type { Directory } from '../directory.ts';
import type { Notifier } from '../notifier.ts';
import type { MessageQueue } from '../../delivery/types.ts';
import { card, text, type Card, type Reply } from '../reply.ts';
import { hasPermission, requirePermission } from '../roles.ts';
import type { Route } from '../router.ts';
import type { Turn } from '../turn.ts';

export interface QuestionRecord {
  id: string;
  question: string;
  askedBy: string;
  askedAt: string;
  intent: 'question' | 'incident';
  section: string | null;
  confidence: number;
  abstained: boolean;
  feedback?: 'helpful' | 'not-helpful';
  escalationId?: string;
}

export interface EscalationRecord {
  id: string;
  questionId: string;
  question: string;
  askedBy: string;
  askedAt: string;
  status: 'open' | 'answered';
  answer?: string;
  answeredBy?: string;
  answeredAt?: string;
  saved?: boolean;
  /**
   * How the question went to the coordinators, when sent through the outbox: its broadcast (the
   * escalation's id; progress and permanent failures are there) and those who could not be reached
   * at all (no conversation with the bot yet, or their platform is not connected).
   */
  delivery?: { broadcastId: string; coordinators: number; unreachable: string[] };
}

/** Waiting questions shown at once (one card each); answering them shows the next. */
const WAITING_SHOWN = 5;

/** Longest quote shown in a card; the full section is one button away. */
const QUOTE_LIMIT = 1200;

export interface QaDeps {
  store: Store;
  library: PolicyLibrary;
  directory: Directory;
  notifier: Notifier;
  /** The durable outbox; without it the escalation is sent directly and waited for. */
  queue?: MessageQueue;
  audit: AuditLog;
  /** The immediate steps shown before anything else when a message reads as a report. */
  incidentSteps: (turn: Turn) => Reply[];
}

const questionKey = (school: string, id: string) => ({ kind: 'question', school, id });
const escalationKey = (school: string, id: string) => ({ kind: 'escalation', school, id });

function truncate(value: string, limit: number): string {
  return value.length <= limit ? value : `${value.slice(0, limit).replace(/\s+\S*$/, '')} …`;
}

function citation(section: IndexedSection, saved?: { answeredAt: string }): string {
  if (section.docId === SAVED_ANSWER_DOC) return `Answered by the e-safety coordinator on ${saved?.answeredAt.slice(0, 10) ?? section.version}`;
  const heading = section.parentHeading ? `${section.parentHeading} › ${section.heading}` : section.heading;
  return `${section.docTitle} · ${heading} · version ${section.version}`;
}

export function answerCard(section: IndexedSection, questionId: string, saved?: { answeredAt: string }): Card {
  return {
    kind: 'qa.answer',
    title: section.docId === SAVED_ANSWER_DOC ? 'The coordinator has answered this before' : section.heading,
    subtitle: citation(section, saved),
    // The citation is the subtitle; repeating it under the quote only adds noise.
    blocks: [{ type: 'quote', text: truncate(section.text, QUOTE_LIMIT) }],
    actions: [
      ...(section.text.length > QUOTE_LIMIT || section.docId !== SAVED_ANSWER_DOC ? [{ type: 'submit' as const, title: 'Open the whole section', data: { route: 'qa.section', sectionId: section.id } }] : []),
      { type: 'submit', title: 'Helpful', data: { route: 'qa.feedback', questionId, helpful: true } },
      { type: 'submit', title: 'Not helpful', data: { route: 'qa.feedback', questionId, helpful: false } },
      { type: 'submit', title: 'Ask the coordinator', data: { route: 'qa.escalate', questionId } },
    ],
  };
}

function notCoveredCard(questionId: string): Card {
  return {
    kind: 'qa.not-covered',
    title: "Our policies don't cover that",
    blocks: [
      { type: 'text', text: "I couldn't find a rule in the school's policies that answers this, and I'd rather not guess." },
      { type: 'text', text: 'I can send your question to the e-safety coordinator; their answer will come back to you here.' },
    ],
    actions: [{ type: 'submit', title: 'Ask the coordinator', data: { route: 'qa.escalate', questionId } }],
  };
}

export function qaRoutes(deps: QaDeps): Route[] {
  const { store, library, notifier, audit, directory } = deps;

  const logQuestion = async (turn: Turn, decision: AnswerDecision): Promise<QuestionRecord> => {
    const record: QuestionRecord = {
      id: `${new Date().toISOString()}-${randomUUID().slice(0, 8)}`,
      // A message that reads as a report may be a disclosure: its words belong in a case, not the question log.
      question: decision.intent === 'incident' ? '' : (turn.inbound.text ?? ''),
      askedBy: turn.user.id,
      askedAt: new Date().toISOString(),
      intent: decision.intent,
      section: decision.abstained ? null : (decision.hit?.section.id ?? null),
      confidence: decision.confidence,
      abstained: decision.abstained,
    };
    await store.create(questionKey(turn.school.id, record.id), record);
    return record;
  };

  const ask: Route = {
    name: 'qa.ask',
    handle: async (turn) => {
      const question = (turn.inbound.text ?? '').trim();
      if (!question) return [text('Ask me a question about our e-safety or acceptable use policies.')];
      const index = await library.index(turn.school.id);
      if (index.size === 0) return [text('No policies have been imported for this school yet. A coordinator can import them with "policies import".')];
      const decision = decideAnswer(index, question);
      const record = await logQuestion(turn, decision);
      turn.log.info({ intent: decision.intent, abstained: decision.abstained, confidence: Math.round(decision.confidence * 100) / 100 }, 'question answered');
      if (decision.intent === 'incident') {
        const procedure = decision.hit ? [card({ ...answerCard(decision.hit.section, record.id), kind: 'qa.procedure', title: `What our policy says: ${decision.hit.section.heading}` })] : [];
        const report = card({
          kind: 'incident.offer',
          title: 'Record it now',
          blocks: [{ type: 'text', text: 'If this has happened, report it here the same day: it goes only to the people who need to know.' }],
          actions: [{ type: 'submit', title: 'Report an incident', style: 'positive', data: { route: 'incident.start' } }],
        });
        return [...deps.incidentSteps(turn), ...procedure, report];
      }
      if (decision.abstained || !decision.hit) return [card(notCoveredCard(record.id))];
      const section = decision.hit.section;
      return [card(answerCard(section, record.id, section.docId === SAVED_ANSWER_DOC ? library.savedAnswer(turn.school.id, section.id) : undefined))];
    },
  };

  const section: Route = {
    name: 'qa.section',
    handle: async (turn) => {
      const { sectionId } = z.object({ sectionId: z.string().max(300) }).parse(turn.inbound.submission);
      const index = await library.index(turn.school.id);
      const found = index.sections.get(sectionId);
      if (!found) return [text('That section is no longer in the current policies; it may have been changed since. Ask again to see the current wording.')];
      return [card({ kind: 'qa.section', title: found.heading, subtitle: citation(found), blocks: [{ type: 'quote', text: truncate(found.text, 20_000) }] })];
    },
  };

  const feedback: Route = {
    name: 'qa.feedback',
    handle: async (turn) => {
      const input = z.object({ questionId: z.string().max(100), helpful: z.boolean() }).parse(turn.inbound.submission);
      const record = await store.get<QuestionRecord>(questionKey(turn.school.id, input.questionId));
      if (!record || record.data.askedBy !== turn.user.id) return [text("I couldn't find that question of yours; the feedback was not recorded.")];
      const value = input.helpful ? 'helpful' : 'not-helpful';
      if (record.data.feedback !== value) {
        try {
          await store.replace(questionKey(turn.school.id, input.questionId), { ...record.data, feedback: value }, record.etag);
        } catch (error) {
          if (!isAppError(error, 'precondition_failed')) throw error;
        }
      }
      return [text(input.helpful ? 'Thanks, glad it helped.' : 'Thanks for saying. If you still need an answer, use "Ask the coordinator".')];
    },
  };

  const escalate: Route = {
    name: 'qa.escalate',
    handle: async (turn) => {
      const { questionId } = z.object({ questionId: z.string().max(100) }).parse(turn.inbound.submission);
      const record = await store.get<QuestionRecord>(questionKey(turn.school.id, questionId));
      if (!record || record.data.askedBy !== turn.user.id) return [text("I couldn't find that question of yours. Please ask it again.")];
      if (record.data.escalationId) return [text('This question is already with the coordinator; their answer will come to you here.')];
      const escalation: EscalationRecord = {
        id: `esc-${randomUUID()}`,
        questionId,
        question: record.data.question,
        askedBy: turn.user.id,
        askedAt: new Date().toISOString(),
        status: 'open',
      };
      try {
        await store.replace(questionKey(turn.school.id, questionId), { ...record.data, escalationId: escalation.id }, record.etag);
      } catch (error) {
        // A double click: the first click's escalation stands.
        if (isAppError(error, 'precondition_failed')) return [text('This question is already with the coordinator; their answer will come to you here.')];
        throw error;
      }
      const coordinators = await directory.usersWithRole(turn.school.id, ['coordinator']);
      const message = [card(escalationCard(escalation, turn.user.name))];
      let delivered: number;
      if (deps.queue) {
        // Through the outbox: sent in the background, retried, within the platform's limits. The
        // coordinators who cannot be reached are enqueued too, so the outbox records each of them as
        // undeliverable, with the reason, under this escalation's broadcast.
        const unreachable = coordinators.filter((coordinator) => !notifier.canReach(coordinator)).map((coordinator) => coordinator.id);
        escalation.delivery = { broadcastId: escalation.id, coordinators: coordinators.length, unreachable };
        await store.create(escalationKey(turn.school.id, escalation.id), escalation);
        if (coordinators.length > 0) {
          await deps.queue.enqueue(turn.school.id, coordinators.map((coordinator) => ({ recipient: coordinator.id, replies: message })), { broadcastId: escalation.id, origin: 'qa.escalation' });
        }
        delivered = coordinators.length - unreachable.length;
      } else {
        await store.create(escalationKey(turn.school.id, escalation.id), escalation);
        const results = await Promise.all(coordinators.map((coordinator) => notifier.sendToUser(coordinator, message)));
        delivered = results.filter((r) => r.delivered).length;
      }
      turn.log.info({ coordinators: coordinators.length, reachable: delivered, queued: Boolean(deps.queue) }, 'question escalated');
      if (delivered === 0) {
        return [text("I've saved your question for the e-safety coordinator, but I couldn't reach one in chat just now. It is waiting for them and their answer will come to you here.")];
      }
      return [text("I've sent your question to the e-safety coordinator. Their answer will come to you here.")];
    },
  };

  const reply: Route = {
    name: 'qa.reply',
    handle: async (turn) => {
      const input = z
        .object({ escalationId: z.string().max(100), answer: z.string().trim().max(4000).optional(), save: z.union([z.boolean(), z.enum(['true', 'false'])]).optional() })
        .parse(turn.inbound.submission);
      if (!hasPermission(turn.roles, 'qa.answerEscalations')) {
        await audit.record(turn.school.id, { actor: turn.user.id, action: 'qa.reply', target: input.escalationId, outcome: 'refused' });
        requirePermission(turn.roles, 'qa.answerEscalations');
      }
      if (!input.answer) return [text('Please type an answer before sending.')];
      const record = await store.get<EscalationRecord>(escalationKey(turn.school.id, input.escalationId));
      if (!record) return [text("That question can't be found any more.")];
      if (record.data.status === 'answered') return [text(`That question was already answered on ${record.data.answeredAt?.slice(0, 10)}; nothing was changed.`)];
      const save = input.save === true || input.save === 'true';
      const answered: EscalationRecord = { ...record.data, status: 'answered', answer: input.answer, answeredBy: turn.user.id, answeredAt: new Date().toISOString(), saved: save };
      try {
        await store.replace(escalationKey(turn.school.id, record.id), answered, record.etag);
      } catch (error) {
        if (isAppError(error, 'precondition_failed')) return [text('Someone else answered that question a moment ago; nothing was changed.')];
        throw error;
      }
      if (save) {
        await library.saveAnswer(turn.school.id, { id: record.id, question: record.data.question, answer: input.answer, answeredBy: turn.user.id, answeredAt: answered.answeredAt! });
      }
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'qa.reply', target: record.id, outcome: 'ok', detail: save ? 'saved for everyone' : undefined });
      const delivery = await notifier.sendToUserId(turn.school.id, record.data.askedBy, [
        card({
          kind: 'qa.coordinator-answer',
          title: 'The e-safety coordinator has answered your question',
          blocks: [
            { type: 'text', style: 'muted', text: `You asked: ${truncate(record.data.question, 500)}` },
            { type: 'quote', text: input.answer, source: `E-safety coordinator, ${answered.answeredAt!.slice(0, 10)}` },
          ],
        }),
      ]);
      return [text(`Thanks. ${delivery.delivered ? 'Your answer has been sent.' : `Your answer is saved but could not be delivered yet (${delivery.reason}).`}${save ? ' It is saved, so the next person who asks gets it at once.' : ''}`)];
    },
  };

  const report: Route = {
    name: 'qa.report',
    matchText: (input) => /^\/?questions report\b/i.test(input),
    handle: async (turn) => {
      requirePermission(turn.roles, 'qa.report');
      const questions = (await store.list<QuestionRecord>('question', turn.school.id)).map((r) => r.data).filter((q) => q.intent === 'question');
      const bySection = new Map<string, number>();
      for (const q of questions) if (q.section) bySection.set(q.section, (bySection.get(q.section) ?? 0) + 1);
      const top = [...bySection.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
      const unanswered = questions.filter((q) => q.abstained || q.feedback === 'not-helpful');
      const helpful = questions.filter((q) => q.feedback === 'helpful').length;
      return [
        card({
          kind: 'qa.report',
          title: 'Questions asked, for the annual review',
          blocks: [
            { type: 'facts', facts: [{ title: 'Questions', value: String(questions.length) }, { title: 'Not covered or not helpful', value: String(unanswered.length) }, { title: 'Marked helpful', value: String(helpful) }] },
            { type: 'text', style: 'heading', text: 'Most asked about' },
            top.length ? { type: 'list', items: top.map(([id, n]) => `${id}: ${n}`) } : { type: 'text', text: 'None yet.' },
            { type: 'text', style: 'heading', text: 'Not covered by the policies (latest 15)' },
            unanswered.length ? { type: 'list', items: unanswered.slice(-15).map((q) => truncate(q.question, 200)) } : { type: 'text', text: 'None.' },
          ],
        }),
      ];
    },
  };

  /**
   * The questions still waiting for a coordinator, oldest first, each with its answer form: how a
   * coordinator the bot could not reach when a question was asked (a new coordinator, a blocked
   * send) finds and answers it, so no question is lost.
   */
  const waiting: Route = {
    name: 'qa.waiting',
    matchText: (input) => /^\/?(questions waiting|waiting questions|unanswered questions)$/i.test(input),
    handle: async (turn) => {
      if (!hasPermission(turn.roles, 'qa.answerEscalations')) {
        await audit.record(turn.school.id, { actor: turn.user.id, action: 'qa.waiting', outcome: 'refused' });
        requirePermission(turn.roles, 'qa.answerEscalations');
      }
      const open = (await store.list<EscalationRecord>('escalation', turn.school.id))
        .map((r) => r.data)
        .filter((e) => e.status === 'open')
        .sort((a, b) => a.askedAt.localeCompare(b.askedAt));
      if (open.length === 0) return [text('No questions are waiting for a coordinator.')];
      const names = new Map((await directory.listUsers(turn.school.id)).map((u) => [u.id, u.name]));
      const shown = open.slice(0, WAITING_SHOWN);
      return [
        text(`${open.length} question${open.length === 1 ? ' is' : 's are'} waiting for a coordinator${open.length > shown.length ? `; the oldest ${shown.length} are below, answer them to see the rest` : ''}.`),
        ...shown.map((escalation) => card(escalationCard(escalation, names.get(escalation.askedBy)))),
      ];
    },
  };

  return [ask, section, feedback, escalate, reply, report, waiting];
}

export function escalationCard(escalation: EscalationRecord, askerName?: string): Card {
  return {
    kind: 'qa.escalation',
    title: 'A question the policies do not answer',
    subtitle: `From ${askerName ?? escalation.askedBy}, ${escalation.askedAt.slice(0, 10)}`,
    blocks: [
      { type: 'quote', text: truncate(escalation.question, 2000) },
      { type: 'input', input: { kind: 'text', id: 'answer', label: 'Your answer', multiline: true, required: true, maxLength: 4000 } },
      { type: 'input', input: { kind: 'toggle', id: 'save', label: 'Save this answer so the next person who asks gets it at once', value: true } },
    ],
    actions: [{ type: 'submit', title: 'Send answer', style: 'positive', data: { route: 'qa.reply', escalationId: escalation.id } }],
  };
}

