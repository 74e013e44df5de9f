/**
 * Every card the bot sends, built the way users meet it: from the real bot core (test/cards/harness.ts)
 * or, for worst cases the sample school cannot produce, from the feature's own card builder with
 * inputs at their limits. test/cards/cards.test.ts checks each one as Teams will meet it (Adaptive
 * Cards 1.5, the official library's parser, the message size limit), and scripts/render-card-pictures.ts
 * draws the ones with a `picture` for the README.
 *
 * A new card is added here when its feature lands: the test fails while the bot can send a card
 * kind that has no entry. Scenarios share one harness and run in order (a later one may rely on
 * people an earlier one introduced); a scenario that changes the school for good gets its own
 * harness (`isolated`).
 */
import { parsePolicy } from '../../src/policies/markdown.ts';
import { answerCard, escalationCard, type QuestionRecord } from '../../src/bot/features/qa.ts';
import { caseCard, caseListCard, governorsReportCard, notificationCard } from '../../src/bot/features/incidents/cards.ts';
import type { CaseRecord } from '../../src/bot/features/incidents/cases.ts';
import type { UserRecord } from '../../src/bot/directory.ts';
import type { Card } from '../../src/bot/reply.ts';
import { actionData, CardHarness, cardOf } from './harness.ts';

export interface CatalogueEntry {
  /** Unique; says which card and which situation ("qa.answer: the longest policy section"). */
  name: string;
  /** The card's kind, as the builder sets it. */
  kind: string;
  /** Built from inputs at their limits. */
  worstCase?: boolean;
  /** File name under docs/images/ when the README shows this card. */
  picture?: string;
  /**
   * A problem the card has today that belongs to its feature, not to this check: the test then
   * expects the check to fail with this text, so the entry is fixed (and the note removed) as soon
   * as the card is.
   */
  knownIssue?: { matches: RegExp; note: string };
  build(harness: CardHarness): Promise<Card>;
}

// ---------------------------------------------------------------------------------------------
// Worst-case inputs

/** Policy-like prose carrying every character Adaptive Card Markdown would act on (so escaping is at its most costly). */
const hostileProse =
  'Staff must not share passwords (see section 4.2) - ever! Use [approved](https://example.org) tools; report **any** breach #now: <b>tell</b> the DSL_lead {today} | ~not~ later + note `when`. ';

export function longText(length: number, seed = hostileProse): string {
  return seed.repeat(Math.ceil(length / seed.length)).slice(0, length);
}

/** A Teams display name at a generous length. */
const longName = (i: number) => `Dr Alexandra-Catherine Montgomery-Fitzwilliam-Okonkwo ${String(i).padStart(3, '0')}`;
const aadId = (i: number) => `6f1c2a4e-8b3d-4e5f-9a7b-${String(i).padStart(12, '0')}`;

const MAX_MESSAGE = 4000; // src/bot/inbound.ts MAX_TEXT_LENGTH

async function isolated<T>(work: (harness: CardHarness) => Promise<T>): Promise<T> {
  const harness = await CardHarness.start();
  try {
    return await work(harness);
  } finally {
    await harness.close();
  }
}

/** Asks a question the policies do not cover and sends it to the coordinator; returns the proactive escalation card. */
async function escalate(h: CardHarness, teacher: string, question: string, coordinator: string): Promise<Card> {
  await h.grant(coordinator, 'coordinator');
  await h.say(coordinator, 'hello', 'Casey Coordinator');
  const asked = await h.say(teacher, question, 'Tess Teacher');
  const offer = asked.find((r) => r.type === 'card' && r.card.actions?.some((a) => a.title === 'Ask the coordinator'));
  if (!offer || offer.type !== 'card') throw new Error(`no card offering "Ask the coordinator" for the question (got ${asked.map((r) => (r.type === 'card' ? r.card.kind : r.text)).join('; ')})`);
  const since = h.delivered.length;
  await h.submit(teacher, actionData(offer.card, 'Ask the coordinator'));
  return cardOf(h.deliveredTo(coordinator, since), 'qa.escalation');
}

/** The coordinator answers an escalation card; returns what the asker receives. */
async function answer(h: CardHarness, coordinator: string, teacher: string, escalation: Card, text: string, save: boolean): Promise<Card> {
  const since = h.delivered.length;
  const reply = await h.submit(coordinator, { ...actionData(escalation, 'Send answer'), answer: text, save: String(save) });
  const delivered = h.deliveredTo(teacher, since);
  if (!delivered.length) throw new Error(`the answer reached nobody (the coordinator was told: ${reply.map((r) => (r.type === 'text' ? r.text : r.card.kind)).join('; ')})`);
  return cardOf(delivered, 'qa.coordinator-answer');
}

/** Fills and sends the incident report as `reporter`; returns the case reference. */
async function report(h: CardHarness, reporter: string, values: Record<string, unknown>): Promise<string> {
  const form = cardOf(await h.say(reporter, 'report an incident', 'Rory Reporter'), 'form.incident');
  const sent = await h.submit(reporter, { ...actionData(form, 'Send report'), ...values });
  const ref = sent.map((r) => (r.type === 'text' ? r.text : '')).join(' ').match(/INC-\d{4}-\d{4,}/)?.[0];
  if (!ref) throw new Error(`the report was not accepted: ${sent.map((r) => (r.type === 'text' ? r.text : `card ${r.card.kind}: ${JSON.stringify(r.card.blocks.filter((b) => b.type === 'input' && b.input.error).map((b) => b.type === 'input' && b.input.error))}`)).join('; ')}`);
  return ref;
}

const cyberbullying = {
  category: 'cyberbullying',
  riskAreas: 'conduct',
  childAtRisk: 'false',
  occurredAt: '2026-11-20T09:15',
  place: 'Year 9 class group chat',
  details: 'A pupil showed me messages in the class group chat calling another pupil names, sent last night.',
  actionsTaken: 'Spoke to the pupil who showed me; no images were shared.',
  dslToldInPerson: 'false',
};

/** A case as the incident feature stores it, at the limits of its form. */
function worstCase(ref: string, overrides: Partial<CaseRecord> = {}): CaseRecord {
  const at = '2026-11-20T10:15:00.000Z';
  return {
    ref,
    draftId: `draft-${ref}`,
    category: 'nudes',
    audience: 'safeguarding',
    childProtection: true,
    values: {
      category: 'nudes',
      riskAreas: ['content', 'contact', 'conduct', 'commerce'],
      childAtRisk: true,
      occurredAt: '2026-11-20 09:30',
      place: longText(200),
      details: longText(4000),
      pupils: longText(1000),
      staffInvolved: longText(500),
      devices: ['school', 'personal', 'none'],
      actionsTaken: longText(2000),
      evidence: longText(1000),
      dslToldInPerson: true,
      dslToldAt: '2026-11-20 09:45',
    },
    reporter: aadId(1),
    reportedAt: at,
    status: 'action-taken',
    assignee: aadId(2),
    subjects: [],
    entries: Array.from({ length: 25 }, (_, i) => ({ at, by: aadId(2 + (i % 3)), kind: 'note' as const, text: longText(2000) })),
    rev: 40,
    acknowledgedBy: { user: aadId(2), at },
    ...overrides,
  };
}

const team = (count: number): UserRecord[] =>
  Array.from({ length: count }, (_, i) => ({ id: aadId(100 + i), platform: 'teams', name: longName(i), roles: ['dsl'], firstSeen: '2026-01-01', lastSeen: '2026-11-20' }));

// ---------------------------------------------------------------------------------------------
// The catalogue

export const catalogue: CatalogueEntry[] = [
  // Everyday commands
  { name: 'core.help: for staff', kind: 'core.help', build: async (h) => cardOf(await h.say('staff-help', 'help'), 'core.help') },
  {
    name: 'core.help: for a coordinator (their commands listed)',
    kind: 'core.help',
    build: async (h) => {
      await h.grant('coord-help', 'coordinator');
      return cardOf(await h.say('coord-help', 'help'), 'core.help');
    },
  },
  { name: 'core.whoami', kind: 'core.whoami', build: async (h) => cardOf(await h.say(aadId(7), 'whoami', longName(7)), 'core.whoami') },
  {
    name: 'core.roles: the list',
    kind: 'core.roles',
    build: async (h) => {
      await h.grant('coord-roles', 'coordinator');
      await h.grant('dsl-roles', 'dsl', 'management');
      return cardOf(await h.say('coord-roles', 'roles list'), 'core.roles');
    },
  },
  {
    name: 'core.roles: 60 role holders with long names (a large trust)',
    kind: 'core.roles',
    worstCase: true,
    build: () =>
      isolated(async (h) => {
        await h.grant('coord-many', 'coordinator');
        for (let i = 0; i < 60; i++) {
          await h.say(aadId(i), 'hello', longName(i));
          await h.grant(aadId(i), 'governor', 'management', 'deputy-dsl');
        }
        return cardOf(await h.say('coord-many', 'roles list'), 'core.roles');
      }),
  },

  // Policies
  { name: 'policies.list: the sample pack', kind: 'policies.list', build: async (h) => cardOf(await h.say('staff-list', 'policies'), 'policies.list') },
  {
    name: 'policies.import: nothing changed',
    kind: 'policies.import',
    build: async (h) => {
      await h.grant('coord-import', 'coordinator');
      return cardOf(await h.say('coord-import', 'policies import'), 'policies.import');
    },
  },

  // Asking
  {
    name: 'qa.answer: a question the policies answer',
    kind: 'qa.answer',
    picture: 'card-answer.png',
    build: async (h) => cardOf(await h.say('teacher-ask', 'can pupils use phones in class?'), 'qa.answer'),
  },
  {
    name: 'qa.answer: the longest policy section, with long headings, full of Markdown characters',
    kind: 'qa.answer',
    worstCase: true,
    build: async () =>
      answerCard(
        { id: `${'d'.repeat(100)}#${'s'.repeat(150)}`, docId: 'd'.repeat(100), docTitle: longText(200), heading: longText(200), parentHeading: longText(200), text: longText(100_000), version: '2026.12-rc.1' },
        `${new Date().toISOString()}-abcdef12`,
      ),
  },
  {
    name: 'qa.answer: a coordinator answer saved for everyone, at its longest',
    kind: 'qa.answer',
    worstCase: true,
    build: () =>
      isolated(async (h) => {
        const question = 'who do I tell if the minibus wifi shows adverts';
        const escalation = await escalate(h, 'teacher-saved', question, 'coord-saved');
        await answer(h, 'coord-saved', 'teacher-saved', escalation, longText(MAX_MESSAGE), true);
        const replies = await h.say('teacher-saved-2', question);
        const saved = cardOf(replies, 'qa.answer');
        if (!/coordinator/i.test(saved.title)) throw new Error(`expected the saved coordinator answer, got "${saved.title}"`);
        return saved;
      }),
  },
  {
    name: 'qa.section: the whole section, opened from an answer',
    kind: 'qa.section',
    build: async (h) => {
      const answered = cardOf(await h.say('teacher-section', 'what is the password rule for staff accounts'), 'qa.answer');
      return cardOf(await h.submit('teacher-section', actionData(answered, 'Open the whole section')), 'qa.section');
    },
  },
  {
    name: 'qa.section: a 100,000-character section full of Markdown characters',
    kind: 'qa.section',
    worstCase: true,
    build: () =>
      isolated(async (h) => {
        const doc = parsePolicy('zz-worst.md', `---\nversion: 2026.12\n---\n# ${longText(200)}\n\n## ${longText(200)}\n\n${longText(100_000)}\n`);
        await h.core.library.import(h.school, [doc], 'test');
        const index = await h.core.library.index(h.school);
        const section = [...index.sections.values()].find((s) => s.docId === doc.id && s.text.length > 50_000);
        if (!section) throw new Error('the long section was not indexed');
        return cardOf(await h.submit('teacher-long', { route: 'qa.section', sectionId: section.id }), 'qa.section');
      }),
  },
  {
    name: 'qa.not-covered',
    kind: 'qa.not-covered',
    picture: 'card-not-covered.png',
    build: async (h) => cardOf(await h.say('teacher-uncovered', 'when is the staff christmas party'), 'qa.not-covered'),
  },
  {
    name: 'qa.escalation: the question, as the coordinator receives it',
    kind: 'qa.escalation',
    picture: 'card-escalation.png',
    build: async (h) => escalate(h, 'teacher-esc', 'Can I use my own laptop for parents evening slides?', 'coord-esc'),
  },
  {
    name: 'qa.escalation: the longest question from someone with a long name',
    kind: 'qa.escalation',
    worstCase: true,
    build: async () =>
      escalationCard({ id: `esc-${'f'.repeat(36)}`, questionId: 'q', question: longText(MAX_MESSAGE), askedBy: aadId(9), askedAt: '2026-11-20T10:00:00.000Z', status: 'open' }, longName(9)),
  },
  {
    name: "qa.coordinator-answer: the coordinator's answer, as the asker receives it",
    kind: 'qa.coordinator-answer',
    picture: 'card-coordinator-answer.png',
    build: async (h) => {
      const escalation = await escalate(h, 'teacher-ans', 'Can pupils film the school play on their phones?', 'coord-ans');
      return answer(h, 'coord-ans', 'teacher-ans', escalation, 'Yes, for their own family only: remind them not to post it online, as some pupils may not be photographed.', true);
    },
  },
  {
    name: 'qa.coordinator-answer: the longest question and the longest answer',
    kind: 'qa.coordinator-answer',
    worstCase: true,
    build: async (h) => {
      const escalation = await escalate(h, 'teacher-ans-long', longText(MAX_MESSAGE, 'zebra quokka narwhal axolotl '), 'coord-ans-long');
      return answer(h, 'coord-ans-long', 'teacher-ans-long', escalation, longText(MAX_MESSAGE), false);
    },
  },
  {
    name: 'qa.report: after the questions above',
    kind: 'qa.report',
    build: async (h) => {
      await h.grant('coord-report', 'coordinator');
      return cardOf(await h.say('coord-report', 'questions report'), 'qa.report');
    },
  },
  {
    name: 'qa.report: many long unanswered questions and long section ids',
    kind: 'qa.report',
    worstCase: true,
    build: () =>
      isolated(async (h) => {
        for (let i = 0; i < 60; i++) {
          const record: QuestionRecord = {
            id: `2026-11-20T10:00:${String(i).padStart(2, '0')}.000Z-${String(i).padStart(8, '0')}`,
            question: longText(MAX_MESSAGE),
            askedBy: aadId(i),
            askedAt: '2026-11-20T10:00:00.000Z',
            intent: 'question',
            section: i < 30 ? `${'document-with-a-long-id-'.repeat(4)}${i}#${'a-section-heading-slug-'.repeat(6)}${i}` : null,
            confidence: 0.2,
            abstained: i >= 30,
            feedback: i % 3 === 0 ? 'not-helpful' : undefined,
          };
          await h.core.store.create({ kind: 'question', school: h.school, id: record.id }, record);
        }
        await h.grant('coord-report-long', 'coordinator');
        return cardOf(await h.say('coord-report-long', 'questions report'), 'qa.report');
      }),
  },

  // A message that reads as a disclosure
  {
    name: 'incident.immediate-steps: shown first for a disclosure',
    kind: 'incident.immediate-steps',
    picture: 'card-immediate-steps.png',
    build: async (h) => cardOf(await h.say('teacher-disclosure', 'a pupil showed me a nude photo of another pupil on his phone'), 'incident.immediate-steps'),
  },
  {
    name: "qa.procedure: the school's procedure, after the steps",
    kind: 'qa.procedure',
    build: async (h) => cardOf(await h.say('teacher-disclosure-2', 'a year 8 girl told me an adult online asked her for photos'), 'qa.procedure'),
  },
  {
    name: 'incident.offer: the offer to record it',
    kind: 'incident.offer',
    build: async (h) => cardOf(await h.say('teacher-disclosure-3', 'a pupil showed me a nude photo of another pupil on his phone'), 'incident.offer'),
  },

  // Incident reports
  {
    name: 'form.incident: the report form',
    kind: 'form.incident',
    build: async (h) => cardOf(await h.say('teacher-form', 'report an incident'), 'form.incident'),
  },
  {
    name: 'form.incident: 300 staff to choose from, every field too long and shown back with its error',
    kind: 'form.incident',
    worstCase: true,
    build: () =>
      isolated(async (h) => {
        for (let i = 0; i < 300; i++) await h.say(aadId(i), 'hello', longName(i));
        const form = cardOf(await h.say('teacher-form-long', 'report an incident'), 'form.incident');
        const tooLong = (n: number) => longText(n + 1);
        const replies = await h.submit('teacher-form-long', {
          ...actionData(form, 'Send report'),
          category: 'staff-conduct',
          aboutHeadteacher: 'false',
          staffSubjects: Array.from({ length: 300 }, (_, i) => aadId(i)).join(','),
          riskAreas: 'content,contact,conduct,commerce',
          childAtRisk: 'true',
          occurredAt: tooLong(40),
          place: tooLong(200),
          details: tooLong(4000),
          pupils: tooLong(1000),
          staffInvolved: tooLong(500),
          devices: 'school,personal,none',
          actionsTaken: tooLong(2000),
          evidence: tooLong(1000),
          dslToldInPerson: 'true',
          dslToldAt: tooLong(40),
        });
        return cardOf(replies, 'form.incident');
      }),
  },
  {
    name: 'incident.resume: an unfinished report',
    kind: 'incident.resume',
    build: async (h) => {
      await h.say('teacher-resume', 'report an incident');
      return cardOf(await h.say('teacher-resume', 'report an incident'), 'incident.resume');
    },
  },
  {
    name: 'incident.notification: the alert a DSL receives (category and reference only)',
    kind: 'incident.notification',
    build: async (h) => {
      await h.grant('dsl-alert', 'dsl');
      await h.say('dsl-alert', 'hello', 'Dana DSL');
      const since = h.delivered.length;
      await report(h, 'teacher-report', cyberbullying);
      return cardOf(h.deliveredTo('dsl-alert', since), 'incident.notification');
    },
  },
  {
    name: 'incident.notification: escalated, with its note',
    kind: 'incident.notification',
    worstCase: true,
    build: async () => notificationCard(worstCase('INC-2026-99999'), true, `Escalated to you: not acknowledged within 15 minutes. ${longText(300)}`),
  },
  {
    name: 'incident.case: a case as the DSL opens it',
    kind: 'incident.case',
    build: async (h) => {
      await h.grant('dsl-case', 'dsl');
      await h.say('dsl-case', 'hello', 'Devi DSL');
      const ref = await report(h, 'teacher-case', cyberbullying);
      return cardOf(await h.say('dsl-case', `case ${ref}`), 'incident.case');
    },
  },
  {
    name: 'incident.case: every field at its limit, many notes, a large team',
    kind: 'incident.case',
    worstCase: true,
    build: async () => caseCard(worstCase('INC-2026-99999'), { canWork: true, team: team(40), names: new Map(team(40).map((u) => [u.id, u.name!])) }),
  },
  {
    name: 'incident.list: cases',
    kind: 'incident.list',
    build: async (h) => {
      await h.grant('dsl-list', 'dsl');
      await report(h, 'teacher-list', cyberbullying);
      return cardOf(await h.say('dsl-list', 'cases'), 'incident.list');
    },
  },
  {
    name: 'incident.list: more cases than it shows',
    kind: 'incident.list',
    worstCase: true,
    build: async () => caseListCard(Array.from({ length: 500 }, (_, i) => worstCase(`INC-2026-${String(i + 1).padStart(5, '0')}`)), 'all open, including a long filter name'),
  },
  {
    name: "incident.governors-report: the governors' counts",
    kind: 'incident.governors-report',
    build: async (h) => {
      await h.grant('governor-report', 'governor');
      return cardOf(await h.say('governor-report', 'governors report'), 'incident.governors-report');
    },
  },
  {
    name: "incident.governors-report: every category, area and status",
    kind: 'incident.governors-report',
    worstCase: true,
    build: async () => {
      const many = (keys: string[]) => new Map(keys.map((k, i) => [k, 1000 + i] as const));
      const { incidentCategories, riskAreas } = await import('../../src/dialogs/incident-report.ts');
      const { caseStatuses } = await import('../../src/bot/features/incidents/cases.ts');
      return governorsReportCard({ label: 'academic year 2025 to 2026' }, {
        total: 99_999,
        byCategory: many(incidentCategories.map((c) => c.value)),
        byRisk: many(riskAreas.map((r) => r.value)),
        byStatus: many([...caseStatuses]),
      });
    },
  },
  // Alerts and acknowledgements (the coordinator's progress cards update in place: src/bot/features/progress.ts)
  {
    name: 'alert.message: a critical alert as staff receive it',
    kind: 'alert.message',
    build: async (h) => {
      await h.grant('coord-alerts', 'coordinator');
      await h.say('coord-alerts', 'hello', 'Casey Coordinator');
      await h.say('staff-alerts', 'hello', 'Sam Staff');
      const since = h.delivered.length;
      await h.say('coord-alerts', 'alert critical A fake parcel-delivery text is going round asking staff to pay a fee. Do not click the link.');
      return cardOf(h.deliveredTo('staff-alerts', since), 'alert.message');
    },
  },
  {
    name: "alert.progress: the coordinator's progress card, with Refresh",
    kind: 'alert.progress',
    build: async (h) => {
      const [alert] = (await h.core.store.list<{ id: string; at: string }>('alert', h.school)).sort((a, b) => b.data.at.localeCompare(a.data.at));
      return cardOf(await h.say('coord-alerts', `alert status ${alert!.id}`), 'alert.progress');
    },
  },
  {
    name: 'alert.progress: an alert to many people the bot cannot reach (the failures listed)',
    kind: 'alert.progress',
    worstCase: true,
    build: () =>
      isolated(async (h) => {
        await h.grant('coord-unreached', 'coordinator');
        // Known to the school but never in a chat with the bot: every send fails, with its reason.
        for (let i = 0; i < 40; i++) await h.grant(aadId(300 + i), 'staff');
        const [sent] = await h.say('coord-unreached', `alert critical ${longText(2000)}`, longName(1));
        const id = sent?.type === 'text' ? /alert-\S+?(?=\.|\s|$)/.exec(sent.text)?.[0] : undefined;
        if (!id) throw new Error('the alert was not sent');
        return cardOf(await h.say('coord-unreached', `alert status ${id}`), 'alert.progress');
      }),
  },
  {
    name: 'ack.request: a policy to read and accept',
    kind: 'ack.request',
    build: async (h) => {
      const since = h.delivered.length;
      await h.say('coord-alerts', 'policies publish staff-acceptable-use to all due 2099-12-31');
      return cardOf(h.deliveredTo('staff-alerts', since), 'ack.request');
    },
  },
  {
    name: "ack.progress: the coordinator's progress card, with Remind them now and Refresh",
    kind: 'ack.progress',
    build: async (h) => cardOf(await h.say('coord-alerts', 'acks status staff-acceptable-use'), 'ack.progress'),
  },
  {
    name: 'ack.progress: 60 people with long names yet to accept',
    kind: 'ack.progress',
    worstCase: true,
    build: () =>
      isolated(async (h) => {
        await h.grant('coord-many', 'coordinator');
        await h.say('coord-many', 'hello', longName(0));
        for (let i = 1; i <= 60; i++) await h.say(aadId(400 + i), 'hello', longName(i));
        await h.say('coord-many', 'policies publish staff-acceptable-use to all due 2099-12-31');
        return cardOf(await h.say('coord-many', 'acks status staff-acceptable-use'), 'ack.progress');
      }),
  },
];
