/**
 * Every card in the catalogue, as Teams will meet it: valid for Adaptive Cards 1.5, parsed by the
 * official adaptivecards library with no warning, validated, and carried in a Teams message under
 * the size limit. A failure names the card and the JSON path of the bad field.
 */
import type { Activity } from 'botbuilder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderAdaptiveCard } from '../../src/adapters/teams/adaptive-card.ts';
import { toActivities } from '../../src/adapters/teams/teams-adapter.ts';
import { card as cardReply, type Card } from '../../src/bot/reply.ts';
import { checkAdaptiveCard, TEAMS_MESSAGE_LIMIT_BYTES } from './adaptive-card-check.ts';
import { catalogue, type CatalogueEntry } from './catalogue.ts';
import { CardHarness } from './harness.ts';

/**
 * The card as a Teams message: the activity botbuilder sends, with the envelope a real reply
 * carries (ids as long as Teams makes them), so the size measured is the size sent.
 */
function teamsMessage(card: Card): Partial<Activity> {
  const [activity] = toActivities([cardReply(card)]);
  return {
    ...activity,
    id: '1732540000000',
    channelId: 'msteams',
    serviceUrl: 'https://smba.trafficmanager.net/emea/6f1c2a4e-8b3d-4e5f-9a7b-0c1d2e3f4a5b/',
    from: { id: `28:${'6f1c2a4e-8b3d-4e5f-9a7b-0c1d2e3f4a5b'}`, name: 'E-safety' },
    recipient: { id: `29:${'1'.repeat(120)}`, name: 'Alexandra-Catherine Montgomery-Fitzwilliam', aadObjectId: '6f1c2a4e-8b3d-4e5f-9a7b-0c1d2e3f4a5b' },
    conversation: { id: `a:${'x'.repeat(160)}`, conversationType: 'personal', tenantId: '6f1c2a4e-8b3d-4e5f-9a7b-0c1d2e3f4a5b', isGroup: false, name: '' },
    replyToId: '1732539999999',
    locale: 'en-GB',
    channelData: { tenant: { id: '6f1c2a4e-8b3d-4e5f-9a7b-0c1d2e3f4a5b' } },
  } as Partial<Activity>;
}

interface Built {
  card?: Card;
  error?: Error;
}

let harness: CardHarness;
const built = new Map<CatalogueEntry, Built>();

beforeAll(async () => {
  harness = await CardHarness.start();
  // In order: a scenario may rely on people an earlier one introduced.
  for (const entry of catalogue) {
    try {
      built.set(entry, { card: await entry.build(harness) });
    } catch (error) {
      built.set(entry, { error: error as Error });
    }
  }
}, 120_000);

afterAll(async () => {
  await harness?.close();
});

function cardFor(entry: CatalogueEntry): Card {
  const result = built.get(entry);
  if (!result) throw new Error(`${entry.name}: not built`);
  if (result.error) throw new Error(`${entry.name}: could not be built: ${result.error.message}`);
  return result.card!;
}

describe('the card catalogue', () => {
  it('names every entry once', () => {
    const names = catalogue.map((entry) => entry.name);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });

  it('has an entry for every card kind the bot sent while the scenarios ran (add one when a feature adds a card)', () => {
    for (const entry of catalogue) cardFor(entry);
    const registered = new Set(catalogue.map((entry) => entry.kind));
    expect([...harness.kinds].filter((kind) => !registered.has(kind)).sort()).toEqual([]);
  });

  it('has a worst case for every kind whose content grows with its input', () => {
    const grows = ['core.roles', 'qa.answer', 'qa.section', 'qa.escalation', 'qa.coordinator-answer', 'qa.report', 'form.incident', 'incident.case', 'incident.list'];
    const worst = new Set(catalogue.filter((entry) => entry.worstCase).map((entry) => entry.kind));
    expect(grows.filter((kind) => !worst.has(kind))).toEqual([]);
  });
});

describe.each(catalogue.map((entry) => [entry.name, entry] as const))('%s', (name, entry) => {
  it(`is a card of kind ${entry.kind}`, () => {
    expect(cardFor(entry).kind).toBe(entry.kind);
  });

  if (entry.knownIssue) {
    it(`still has its known issue (fix the card, then remove knownIssue): ${entry.knownIssue.note}`, () => {
      const { problems } = checkAdaptiveCard(renderAdaptiveCard(cardFor(entry)), teamsMessage(cardFor(entry)));
      expect(problems.join('\n')).toMatch(entry.knownIssue!.matches);
    });
    return;
  }

  it('is valid Adaptive Cards 1.5, parses with no warning, and fits in a Teams message', () => {
    const card = cardFor(entry);
    const { problems, messageBytes } = checkAdaptiveCard(renderAdaptiveCard(card), teamsMessage(card));
    if (problems.length) throw new Error(`${name}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    expect(messageBytes).toBeLessThanOrEqual(TEAMS_MESSAGE_LIMIT_BYTES);
  });
});

describe('the check is not vacuous: a broken card fails naming the card and the field', () => {
  const good = () => renderAdaptiveCard({ kind: 'test.good', title: 'Title', blocks: [{ type: 'text', text: 'Body' }], actions: [{ type: 'submit', title: 'Go', data: { route: 'x.y' } }] }) as Record<string, any>;
  const problemsOf = (card: Record<string, unknown>) => checkAdaptiveCard(card).problems.join('\n');

  it('accepts the good card', () => {
    expect(checkAdaptiveCard(good()).problems).toEqual([]);
  });

  it('an unknown property', () => {
    const card = good();
    card.body[1].colour = 'Attention';
    expect(problemsOf(card)).toContain('body[1].colour: TextBlock has no property "colour" in Adaptive Cards 1.5');
  });

  it('a property from a later version', () => {
    const card = good();
    card.body.push({ type: 'Input.Text', id: 'a', label: 'A', labelPosition: 'inline' });
    card.actions[0].role = 'Button';
    const problems = problemsOf(card);
    expect(problems).toContain('body[2].labelPosition: "labelPosition" needs Adaptive Cards 1.6');
    expect(problems).toContain('actions[0].role: "role" needs Adaptive Cards 1.6');
  });

  it('an element from a later version', () => {
    const card = good();
    card.body.push({ type: 'Carousel', pages: [] });
    card.actions.push({ type: 'Action.Popover', title: 'More' });
    const problems = problemsOf(card);
    expect(problems).toContain('body[2]: Carousel needs Adaptive Cards 1.6');
    expect(problems).toContain('actions[1]: "Action.Popover" is not an Adaptive Cards action type');
  });

  it('a value that is not one of the enumeration, or newer than 1.5', () => {
    const card = good();
    card.body[0].size = 'Huge';
    card.body[1].style = 'columnHeader';
    card.body.push({ type: 'Container', style: 'sunny', items: [] });
    const problems = problemsOf(card);
    expect(problems).toMatch(/body\[0\]: parse InvalidPropertyValue|body\[0\]\.size: "Huge" is not a value of size/);
    expect(problems).toContain('body[2].style: "sunny" is not a value of style');
  });

  it('a nested object with an unknown field (a fact, a choice)', () => {
    const card = good();
    card.body.push({ type: 'FactSet', facts: [{ title: 'a', value: 'b', note: 'c' }] });
    card.body.push({ type: 'Input.ChoiceSet', id: 'pick', label: 'Pick', choices: [{ title: 'One', value: '1', selected: true }] });
    const problems = problemsOf(card);
    expect(problems).toContain('body[2].facts[0].note: Fact has no property "note"');
    expect(problems).toContain('body[3].choices[0].selected: Choice has no property "selected"');
  });

  it('duplicate input ids, an unknown element type, a wrong version, a Teams width it does not know', () => {
    const card = good();
    card.version = '1.6';
    card.msteams = { width: 'Wide' };
    card.body.push({ type: 'Input.Text', id: 'dup', label: 'One' }, { type: 'Input.Text', id: 'dup', label: 'Two' }, { type: 'NoSuchElement' });
    const problems = problemsOf(card);
    expect(problems).toContain('version: must be "1.5"');
    expect(problems).toContain('msteams.width: "Wide" is not a width Teams knows');
    expect(problems).toMatch(/DuplicateId/);
    expect(problems).toMatch(/UnknownElementType/);
  });

  it('a message over the size limit', () => {
    const card = good();
    card.body[1].text = 'x'.repeat(TEAMS_MESSAGE_LIMIT_BYTES);
    expect(problemsOf(card)).toMatch(/^\(message\): \d+ bytes as a Teams message, over the 28672-byte limit$/m);
  });
});
