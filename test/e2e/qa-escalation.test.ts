/**
 * The knowledge base's human loop over HTTP, on the real app and the SQLite store: a question the
 * policies do not cover goes to the coordinator, whose answer reaches the asker in their own chat
 * and, saved, answers the next person at once, cited as the coordinator's. Card buttons are sent
 * back as Teams sends an Action.Submit: a message Activity with `value` = the action's data (plus
 * the card's inputs) and no text. Replies are captured on a loopback fake connector.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/bot/audit.ts';
import type { EscalationRecord, QuestionRecord } from '../../src/bot/features/qa.ts';
import { cardOf, cardText, messageActivity } from '../helpers/activities.ts';
import { startApp, type RunningApp } from '../helpers/app.ts';
import { startFakeConnector, type CapturedActivity, type FakeConnector } from '../helpers/fake-connector.ts';

const SCHOOL = 'default';
const UNCOVERED = 'when is the staff christmas party';

let running: RunningApp;
let connector: FakeConnector;

beforeAll(async () => {
  connector = await startFakeConnector();
  running = await startApp({ STORE: 'sqlite' });
  await running.app.directory.grantRole(SCHOOL, 'coord-1', 'coordinator');
});
afterAll(async () => {
  await running?.stop();
  await connector?.close();
});

const conversationOf = (userId: string) => `a:conv-${userId}`;
const names: Record<string, string> = { 'coord-1': 'Casey Coordinator', 'teacher-1': 'Tess Teacher', 'teacher-2': 'Theo Teacher', 'teacher-3': 'Tara Teacher' };

/** Resolves once the outbox has nothing left to send for the school (every item delivered or failed). */
async function outboxSettled(timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await running.app.outbox.settled(SCHOOL))) {
    if (Date.now() > deadline) throw new Error('the outbox did not settle');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Posts one Activity from a user and returns every activity the bot sent during that turn (to
 * anyone: replies and proactive messages), once the turn is over and the outbox has delivered what
 * the turn enqueued (proactive messages go through the durable outbox, in the background).
 */
async function send(userId: string, message: { text?: string; value?: Record<string, unknown> }): Promise<CapturedActivity[]> {
  const before = connector.activities.length;
  const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, userId, userName: names[userId], ...message }));
  expect(response.status).toBe(200);
  // The response comes once the turn (and every reply it made) has finished; proactive messages follow.
  await outboxSettled();
  return connector.activities.slice(before);
}

const to = (sent: CapturedActivity[], userId: string) => sent.filter((activity) => activity.conversationId === conversationOf(userId));
const cardsTo = (sent: CapturedActivity[], userId: string) => to(sent, userId).map((a) => cardOf(a.activity)).filter(Boolean) as Array<Record<string, any>>;
const textsTo = (sent: CapturedActivity[], userId: string) => to(sent, userId).map((a) => String(a.activity.text ?? ''));
const action = (card: Record<string, any> | undefined, title: string) => {
  const found = card?.actions?.find((a: any) => a.title === title);
  expect(found, `action "${title}" on the card`).toBeDefined();
  return found as { type: string; data: Record<string, unknown> };
};

const escalations = async () => (await running.app.store.list<EscalationRecord>('escalation', SCHOOL)).map((r) => r.data);
const questions = async () => (await running.app.store.list<QuestionRecord>('question', SCHOOL)).map((r) => r.data);
const audit = async () => (await running.app.store.list<AuditEntry>('audit', SCHOOL)).map((r) => r.data);

/** Asks something the policies do not cover and returns the not-covered card. */
async function askUncovered(userId: string, question = UNCOVERED): Promise<Record<string, any>> {
  const sent = await send(userId, { text: question });
  const [card] = cardsTo(sent, userId);
  expect(cardText(card)).toMatch(/Our policies don't cover that/);
  return card!;
}

describe('a question the policies do not cover, answered by the coordinator', () => {
  let notCovered: Record<string, any>;
  let escalationCard: Record<string, any>;
  let escalationId: string;

  it('lets the coordinator be reached: any first message stores their conversation', async () => {
    const sent = await send('coord-1', { text: 'hello' });
    expect(to(sent, 'coord-1').length).toBeGreaterThan(0);
    const coordinator = await running.app.directory.getUser(SCHOOL, 'coord-1');
    expect(coordinator?.data.roles).toContain('coordinator');
    expect(coordinator?.data.reference).toBeDefined();
  });

  it('tells the teacher plainly that the policies do not cover it, offering the coordinator', async () => {
    notCovered = await askUncovered('teacher-1');
    expect(action(notCovered, 'Ask the coordinator').data).toMatchObject({ route: 'qa.escalate' });
    const [record] = (await questions()).filter((q) => q.askedBy === 'teacher-1');
    expect(record).toMatchObject({ question: UNCOVERED, abstained: true, section: null, intent: 'question' });
  });

  it('sends the question to the coordinator, in the coordinator\'s own chat, when the teacher presses "Ask the coordinator"', async () => {
    const sent = await send('teacher-1', { value: action(notCovered, 'Ask the coordinator').data });

    expect(textsTo(sent, 'teacher-1').join('\n')).toMatch(/I've sent your question to the e-safety coordinator/);
    const [card] = cardsTo(sent, 'coord-1');
    expect(card).toBeDefined();
    escalationCard = card!;
    const shown = cardText(escalationCard);
    expect(shown).toContain('A question the policies do not answer');
    expect(shown).toContain(UNCOVERED);
    expect(shown).toContain('From Tess Teacher');
    const inputs = escalationCard.body.filter((e: any) => String(e.type).startsWith('Input.')).map((e: any) => e.id);
    expect(inputs).toEqual(['answer', 'save']);
    const sendAnswer = action(escalationCard, 'Send answer');
    expect(sendAnswer.data.route).toBe('qa.reply');
    escalationId = String(sendAnswer.data.escalationId);

    const stored = await escalations();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: escalationId, question: UNCOVERED, askedBy: 'teacher-1', status: 'open' });
  });

  it('brings the coordinator\'s answer to the teacher, and thanks the coordinator', async () => {
    const sent = await send('coord-1', {
      value: { ...action(escalationCard, 'Send answer').data, answer: 'The staff christmas party is on Friday 18 December at 7pm in the school hall.', save: 'true' },
    });

    expect(textsTo(sent, 'coord-1').join('\n')).toMatch(/Your answer has been sent\..*saved, so the next person who asks gets it at once/);
    const [answer] = cardsTo(sent, 'teacher-1');
    const shown = cardText(answer);
    expect(shown).toContain('The e-safety coordinator has answered your question');
    expect(shown).toContain(`You asked: ${UNCOVERED}`);
    expect(shown).toContain('The staff christmas party is on Friday 18 December at 7pm in the school hall.');
    expect(shown).toMatch(/E-safety coordinator, \d{4}-\d{2}-\d{2}/);

    const [stored] = await escalations();
    expect(stored).toMatchObject({ status: 'answered', answeredBy: 'coord-1', saved: true });
    expect(await audit()).toContainEqual(expect.objectContaining({ actor: 'coord-1', action: 'qa.reply', target: escalationId, outcome: 'ok' }));
  });

  it('answers the next teacher who asks at once, cited as the coordinator\'s answer with its date', async () => {
    const sent = await send('teacher-2', { text: UNCOVERED });
    const [card] = cardsTo(sent, 'teacher-2');
    const shown = cardText(card);
    const [stored] = await escalations();
    expect(shown).toContain('The coordinator has answered this before');
    expect(shown).toContain(`Answered by the e-safety coordinator on ${stored!.answeredAt!.slice(0, 10)}`);
    expect(shown).toContain('Friday 18 December at 7pm');
    expect(card!.actions.map((a: any) => a.title)).toEqual(expect.arrayContaining(['Helpful', 'Not helpful', 'Ask the coordinator']));
    const [record] = (await questions()).filter((q) => q.askedBy === 'teacher-2');
    expect(record).toMatchObject({ abstained: false, section: `coordinator-answers#${escalationId}` });
  });

  it('refuses a second reply to an answered question with a clear message, and changes nothing', async () => {
    const before = await escalations();
    const sent = await send('coord-1', { value: { route: 'qa.reply', escalationId, answer: 'Actually it is cancelled.', save: 'true' } });
    expect(textsTo(sent, 'coord-1').join('\n')).toMatch(/already answered on \d{4}-\d{2}-\d{2}; nothing was changed/);
    expect(to(sent, 'teacher-1')).toEqual([]);
    expect(await escalations()).toEqual(before);
    const again = cardText(cardsTo(await send('teacher-3', { text: UNCOVERED }), 'teacher-3')[0]);
    expect(again).toContain('Friday 18 December at 7pm');
    expect(again).not.toContain('cancelled');
  });
});

describe('escalation guards', () => {
  it('makes one escalation of a double-clicked "Ask the coordinator", however fast the clicks', async () => {
    const card = await askUncovered('teacher-3', 'who runs the staff book club');
    const data = action(card, 'Ask the coordinator').data;
    const before = (await escalations()).length;

    const sentBefore = connector.activities.length;
    // Two clicks in flight at once (their captured activities overlap, so count from sentBefore).
    await Promise.all([send('teacher-3', { value: data }), send('teacher-3', { value: data })]);
    const third = await send('teacher-3', { value: data });
    const all = connector.activities.slice(sentBefore);

    const mine = (await escalations()).filter((e) => e.questionId === data.questionId);
    expect(mine).toHaveLength(1);
    expect((await escalations()).length).toBe(before + 1);
    expect(cardsTo(all, 'coord-1')).toHaveLength(1);
    expect(textsTo(third, 'teacher-3').join('\n')).toMatch(/already with the coordinator/);
    const toTeacher = textsTo(all, 'teacher-3');
    expect(toTeacher).toHaveLength(3);
    expect(toTeacher.filter((t) => /I've sent your question/.test(t))).toHaveLength(1);
    expect(toTeacher.filter((t) => /already with the coordinator/.test(t))).toHaveLength(2);
  });

  it('refuses a coordinator reply from someone who is not a coordinator, audits the refusal and leaves the question open', async () => {
    const card = await askUncovered('teacher-1', 'can we get free parking at the leisure centre');
    const escalated = await send('teacher-1', { value: action(card, 'Ask the coordinator').data });
    const escalationId = String(action(cardsTo(escalated, 'coord-1')[0], 'Send answer').data.escalationId);

    const sent = await send('teacher-2', { value: { route: 'qa.reply', escalationId, answer: 'Yes, everyone parks free.', save: 'true' } });

    expect(textsTo(sent, 'teacher-2').join('\n')).toMatch(/Only the e-safety coordinator can do that/);
    expect(to(sent, 'teacher-1')).toEqual([]);
    const entry = (await audit()).find((e) => e.actor === 'teacher-2' && e.action === 'qa.reply');
    expect(entry).toMatchObject({ target: escalationId, outcome: 'refused' });
    const stored = (await escalations()).find((e) => e.id === escalationId);
    expect(stored).toMatchObject({ status: 'open' });
    expect(stored!.answer).toBeUndefined();
    // Nothing was saved for everyone either.
    const next = await askUncovered('teacher-2', 'can we get free parking at the leisure centre');
    expect(cardText(next)).not.toContain('everyone parks free');
  });

  it('does not let a teacher escalate someone else\'s question', async () => {
    const card = await askUncovered('teacher-1', 'what colour are the new staff lanyards');
    const before = (await escalations()).length;
    const sent = await send('teacher-2', { value: action(card, 'Ask the coordinator').data });
    expect(textsTo(sent, 'teacher-2').join('\n')).toMatch(/couldn't find that question of yours/);
    expect(cardsTo(sent, 'coord-1')).toEqual([]);
    expect((await escalations()).length).toBe(before);
  });

  it('asks the coordinator for an answer when they press send with the answer box empty', async () => {
    const card = await askUncovered('teacher-1', 'who organises the staff pantomime');
    const escalated = await send('teacher-1', { value: action(card, 'Ask the coordinator').data });
    const sendAnswer = action(cardsTo(escalated, 'coord-1')[0], 'Send answer').data;
    const sent = await send('coord-1', { value: { ...sendAnswer, answer: '   ', save: 'false' } });
    expect(textsTo(sent, 'coord-1').join('\n')).toMatch(/Please type an answer before sending/);
    expect((await escalations()).find((e) => e.id === sendAnswer.escalationId)).toMatchObject({ status: 'open' });
  });
});

describe('the coordinator\'s side', () => {
  /** A fresh uncovered question from teacher-1, escalated; returns the Send answer data. */
  async function escalate(question: string): Promise<Record<string, unknown>> {
    const card = await askUncovered('teacher-1', question);
    const escalated = await send('teacher-1', { value: action(card, 'Ask the coordinator').data });
    return action(cardsTo(escalated, 'coord-1')[0], 'Send answer').data;
  }

  it('delivers one answer when the coordinator double-clicks "Send answer"', async () => {
    const sendAnswer = await escalate('which pub is the leaving do at');
    const sentBefore = connector.activities.length;
    const reply = { ...sendAnswer, answer: 'Smart casual, school lanyard on.', save: 'false' };
    await Promise.all([send('coord-1', { value: reply }), send('coord-1', { value: reply })]);
    const all = connector.activities.slice(sentBefore);

    expect(cardsTo(all, 'teacher-1')).toHaveLength(1);
    const toCoordinator = textsTo(all, 'coord-1');
    expect(toCoordinator.filter((t) => /Your answer has been sent/.test(t))).toHaveLength(1);
    expect(toCoordinator.filter((t) => /nothing was changed/.test(t))).toHaveLength(1);
    expect((await audit()).filter((e) => e.action === 'qa.reply' && e.target === sendAnswer.escalationId && e.outcome === 'ok')).toHaveLength(1);
  });

  it('answers only the asker when the coordinator chooses not to save', async () => {
    const question = 'who is bringing the cake on friday';
    const sendAnswer = await escalate(question);
    const sent = await send('coord-1', { value: { ...sendAnswer, answer: 'Sam from maths.', save: 'false' } });
    expect(cardText(cardsTo(sent, 'teacher-1')[0])).toContain('Sam from maths.');
    expect(textsTo(sent, 'coord-1').join('\n')).not.toMatch(/next person who asks/);
    expect((await escalations()).find((e) => e.id === sendAnswer.escalationId)).toMatchObject({ status: 'answered', saved: false });
    // The next person still hears that the policies do not cover it.
    await askUncovered('teacher-2', question);
  });

  it('keeps the question for the coordinator when none can be reached in chat yet, and it can still be answered', async () => {
    // The only coordinator is one the bot has never talked to: no conversation to message them in.
    await running.app.directory.revokeRole(SCHOOL, 'coord-1', 'coordinator');
    await running.app.directory.grantRole(SCHOOL, 'coord-new', 'coordinator');
    try {
      const card = await askUncovered('teacher-1', 'where do i hang my coat in the new building');
      const escalated = await send('teacher-1', { value: action(card, 'Ask the coordinator').data });
      expect(textsTo(escalated, 'teacher-1').join('\n')).toMatch(/couldn't reach one in chat just now\. It is waiting for them/);
      expect(escalated.filter((a) => a.conversationId !== conversationOf('teacher-1'))).toEqual([]);
    } finally {
      await running.app.directory.revokeRole(SCHOOL, 'coord-new', 'coordinator');
      await running.app.directory.grantRole(SCHOOL, 'coord-1', 'coordinator');
    }
    const waiting = (await escalations()).find((e) => e.question === 'where do i hang my coat in the new building');
    expect(waiting).toMatchObject({ status: 'open', askedBy: 'teacher-1' });

    // The coordinator finds it with "questions waiting": the answer form, as the escalation would have brought it.
    const listed = await send('coord-1', { text: 'questions waiting' });
    const forms = cardsTo(listed, 'coord-1').filter((card) => cardText(card).includes('where do i hang my coat in the new building'));
    expect(forms).toHaveLength(1);
    const sendAnswer = action(forms[0], 'Send answer');
    expect(sendAnswer.data).toMatchObject({ route: 'qa.reply', escalationId: waiting!.id });
    expect(textsTo(listed, 'coord-1').join('\n')).toMatch(/waiting for a coordinator/);

    const sent = await send('coord-1', { value: { ...sendAnswer.data, answer: 'Staff room, hooks by the door.', save: 'false' } });
    expect(cardText(cardsTo(sent, 'teacher-1')[0])).toContain('Staff room, hooks by the door.');
    const after = await send('coord-1', { text: 'questions waiting' });
    expect(cardsTo(after, 'coord-1').some((card) => cardText(card).includes('where do i hang my coat in the new building'))).toBe(false);
  });

  it('shows the waiting questions only to coordinators, and audits a refusal', async () => {
    const sent = await send('teacher-2', { text: 'questions waiting' });
    expect(cardsTo(sent, 'teacher-2')).toEqual([]);
    expect(textsTo(sent, 'teacher-2').join('\n')).not.toMatch(/waiting for a coordinator/);
    expect(await audit()).toContainEqual(expect.objectContaining({ actor: 'teacher-2', action: 'qa.waiting', outcome: 'refused' }));
  });

  // A refused proactive send (Teams 403: the bot was blocked) must not be reported as delivered.
  // The escalation goes through the outbox, after the teacher's reply: the teacher hears it was sent
  // to the coordinator, and the refusal is recorded against the escalation, once, never retried.
  it('records the coordinator\'s refusal (Teams 403: bot blocked) as undeliverable, once, without retrying', async () => {
    const card = await askUncovered('teacher-1', 'which room is the staff yoga class in');
    // The outbox is held while the teacher's turn runs, so the refusal meets the coordinator's message.
    await running.app.outbox.stop();
    const before = connector.activities.length;
    const response = await running.post('/api/messages', messageActivity({ serviceUrl: connector.url, userId: 'teacher-1', userName: names['teacher-1'], value: action(card, 'Ask the coordinator').data }));
    expect(response.status).toBe(200);
    expect(textsTo(connector.activities.slice(before), 'teacher-1').join('\n')).toMatch(/I've sent your question to the e-safety coordinator/);
    // 403, as Teams answers when the person has blocked or removed the bot (not retried, unlike a 5xx).
    connector.failNext(403, 1);
    await running.app.outbox.start();
    await outboxSettled();
    const escalated = connector.activities.slice(before);
    expect(to(escalated, 'coord-1')).toEqual([]);
    expect(escalated.map((a) => a.activity.text ?? '').join('\n')).not.toMatch(/Sorry, something went wrong/);

    const escalation = (await escalations()).find((e) => e.question === 'which room is the staff yoga class in')!;
    // Every coordinator is enqueued; those the bot has never talked to (here the playground's, if
    // the playground is on) are recorded as unreachable up front and fail with that reason.
    expect(escalation.delivery).toMatchObject({ broadcastId: escalation.id });
    expect(escalation.delivery!.unreachable).not.toContain('coord-1');
    const progress = await running.app.outbox.progress(SCHOOL, escalation.id);
    expect(progress).toMatchObject({ total: escalation.delivery!.coordinators, delivered: 0, failed: escalation.delivery!.coordinators, pending: 0, inflight: 0 });
    expect(progress.failures).toContainEqual({ recipient: 'coord-1', reason: expect.stringMatching(/blocked the bot/) });
    for (const id of escalation.delivery!.unreachable) expect(progress.failures).toContainEqual({ recipient: id, reason: 'no conversation with this person yet' });
    const items = await running.app.store.list<{ recipient: string; attempts: number; status: number }>('outbox', SCHOOL, { idPrefix: `${escalation.id}:` });
    expect(items.find((item) => item.data.recipient === 'coord-1')!.data).toMatchObject({ attempts: 1, status: 403 });
  });
});

describe('feedback on an answer', () => {
  it('records helpful and not helpful on the question, and only from the person who asked', async () => {
    const sent = await send('teacher-1', { text: 'can kids use their mobiles in my lesson?' });
    const [answer] = cardsTo(sent, 'teacher-1');
    const helpful = action(answer, 'Helpful').data;
    const notHelpful = action(answer, 'Not helpful').data;
    const questionId = String(helpful.questionId);
    const record = async () => (await questions()).find((q) => q.id === questionId);
    expect(await record()).toMatchObject({ abstained: false, intent: 'question' });
    expect((await record())!.feedback).toBeUndefined();

    expect(textsTo(await send('teacher-1', { value: helpful }), 'teacher-1').join('\n')).toMatch(/glad it helped/);
    expect((await record())!.feedback).toBe('helpful');

    expect(textsTo(await send('teacher-1', { value: notHelpful }), 'teacher-1').join('\n')).toMatch(/Ask the coordinator/);
    expect((await record())!.feedback).toBe('not-helpful');

    const other = await send('teacher-2', { value: helpful });
    expect(textsTo(other, 'teacher-2').join('\n')).toMatch(/the feedback was not recorded/);
    expect((await record())!.feedback).toBe('not-helpful');
  });
});

describe('the questions report', () => {
  it('is refused to plain staff', async () => {
    const sent = await send('teacher-1', { text: 'questions report' });
    const replies = textsTo(sent, 'teacher-1').join('\n');
    expect(replies).toMatch(/^Only the e-safety coordinator.* can do that\.$/);
    expect(cardsTo(sent, 'teacher-1')).toEqual([]);
  });

  it('shows a coordinator the counts of questions, the not covered and the helpful, and what was asked most', async () => {
    const asked = (await questions()).filter((q) => q.intent === 'question');
    const notCovered = asked.filter((q) => q.abstained || q.feedback === 'not-helpful');
    const helpful = asked.filter((q) => q.feedback === 'helpful');
    expect(asked.length).toBeGreaterThan(5);
    expect(notCovered.length).toBeGreaterThan(0);

    const sent = await send('coord-1', { text: 'questions report' });
    const [report] = cardsTo(sent, 'coord-1');
    const facts = Object.fromEntries(report!.body.find((e: any) => e.type === 'FactSet').facts.map((f: any) => [f.title, f.value]));
    expect(facts).toEqual({ Questions: String(asked.length), 'Not covered or not helpful': String(notCovered.length), 'Marked helpful': String(helpful.length) });
    const shown = cardText(report);
    expect(shown).toContain('Questions asked, for the annual review');
    expect(shown).toContain(`coordinator-answers#`);
    expect(shown).toContain('who runs the staff book club');
    expect(shown).toContain('can we get free parking at the leisure centre');
  });
});
