/**
 * What to do right now when a message reads as a report or disclosure. Shown before anything else,
 * because the first minutes matter more than the paperwork.
 */
import { card, type Reply } from '../reply.ts';
import type { Turn } from '../turn.ts';

export const immediateSteps = [
  'If a child is in immediate danger, call 999 now.',
  'Do not view, copy, print, forward or save any images or videos, and do not ask anyone to send them to you.',
  'Do not investigate or question the child beyond listening; note their own words.',
  'Keep any device involved: switch it off or leave it as it is, and keep it safe. Do not hand it back.',
  'Tell the designated safeguarding lead (DSL) now, in person or by phone, before the end of the lesson or day.',
];

export function immediateStepsReplies(turn: Turn): Reply[] {
  return [
    card({
      kind: 'incident.immediate-steps',
      title: 'First, what to do right now',
      subtitle: 'This sounds like a safeguarding concern or an incident.',
      tone: 'attention',
      blocks: [
        { type: 'list', ordered: true, items: immediateSteps },
        ...(turn.school.contacts && Object.keys(turn.school.contacts).length ? [{ type: 'facts' as const, facts: Object.entries(turn.school.contacts).map(([title, value]) => ({ title, value })) }] : []),
        { type: 'text', style: 'muted', text: `Write down what happened the same day. ${turn.school.name}'s procedure is quoted below.` },
      ],
    }),
  ];
}
