/**
 * validateActivity checks well-formed Activities by hand before asking the zod schemas (a turn's
 * CPU matters: see bench/). The hand check must never accept what the schemas refuse: for every body
 * here (a valid Activity with one or two fields replaced by awkward values), validateActivity gives
 * exactly what the schemas alone give.
 */
import { describe, expect, it } from 'vitest';
import { activitySchema, messageActivitySchema, validateActivity } from '../../../src/adapters/teams/teams-adapter.ts';
import { messageActivity } from '../../helpers/activities.ts';

/** What /api/messages answered before the hand check existed: the schemas alone. */
function bySchemas(body: unknown): string | undefined {
  const base = activitySchema.safeParse(body);
  if (!base.success) return `Not a Bot Framework Activity: ${base.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`;
  if (base.data.type !== 'message') return undefined;
  const message = messageActivitySchema.safeParse(body);
  return message.success ? undefined : `A message Activity needs ${message.error.issues.map((i) => `${i.path.join('.') || 'body'} (${i.message})`).join(', ')}`;
}

const awkward: unknown[] = [
  undefined, null, '', 'x', 0, 5, true, {}, [], [{}], { id: 'a' }, { id: '' }, { id: 5 },
  'http://127.0.0.1:3978', 'https://smba.trafficmanager.net/emea/', 'HTTP://EXAMPLE.COM', 'ftp://example.com', 'http:example.com',
  'https:/path', ' http://a.example', 'http://a.example ', 'http://a b.example', 'http://exa\tmple.com', 'http://[::1', 'http://', 'not a url',
  [{ type: 'mention' }], [{ type: 5 }], [null], ['mention'],
];

const base = () => messageActivity({ serviceUrl: 'http://127.0.0.1:3978', text: 'can pupils use phones in class?', tenantId: 't1', userName: 'A Teacher' }) as Record<string, any>;
const paths = [
  ['type'], ['serviceUrl'], ['channelId'], ['text'], ['locale'], ['entities'], ['recipient'], ['recipient', 'id'], ['recipient', 'name'], ['recipient', 'role'],
  ['conversation'], ['conversation', 'id'], ['conversation', 'tenantId'], ['conversation', 'conversationType'], ['conversation', 'name'],
  ['from'], ['from', 'id'], ['from', 'aadObjectId'], ['from', 'name'], ['from', 'role'],
];

function withValue(body: Record<string, any>, path: string[], value: unknown): Record<string, any> {
  const copy = structuredClone(body);
  let node = copy;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) return copy;
    node = node[key];
  }
  if (value === undefined) delete node[path.at(-1)!];
  else node[path.at(-1)!] = value;
  return copy;
}

describe('validateActivity', () => {
  it('answers exactly as the schemas do, for valid and awkward message Activities', () => {
    let cases = 0;
    for (const path of paths) {
      for (const value of awkward) {
        const body = withValue(base(), path, value);
        expect(validateActivity(body), `${path.join('.')} = ${JSON.stringify(value)}`).toBe(bySchemas(body));
        cases++;
      }
    }
    expect(validateActivity(base())).toBeUndefined();
    expect(cases).toBeGreaterThan(500);
  });

  it('answers exactly as the schemas do for other Activity types (only the base schema applies)', () => {
    for (const type of ['conversationUpdate', 'typing', 'invoke', 'messageReaction']) {
      for (const path of [['serviceUrl'], ['conversation'], ['conversation', 'id'], ['from'], ['from', 'id'], ['channelId'], ['text'], ['recipient']]) {
        for (const value of awkward) {
          const body = withValue({ ...base(), type }, path, value);
          expect(validateActivity(body), `${type} ${path.join('.')} = ${JSON.stringify(value)}`).toBe(bySchemas(body));
        }
      }
    }
  });

  it('answers exactly as the schemas do for bodies that are not objects', () => {
    for (const body of awkward) expect(validateActivity(body), JSON.stringify(body)).toBe(bySchemas(body));
  });

  it('answers exactly as the schemas do when two fields are awkward at once', () => {
    for (const [i, first] of paths.entries()) {
      for (const second of paths.slice(i + 1)) {
        for (const value of [null, '', 5, {}, 'ftp://example.com']) {
          const body = withValue(withValue(base(), first, value), second, value);
          expect(validateActivity(body), `${first.join('.')}, ${second.join('.')} = ${JSON.stringify(value)}`).toBe(bySchemas(body));
        }
      }
    }
  });
});
