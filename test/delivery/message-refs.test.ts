/**
 * The message references behind cards that update in place, on SQLite with a surface that records
 * what it was asked to do: what each reply costs in store operations, the order replies keep, a
 * gone message replaced by a new one, a message in another conversation left alone, and a store
 * that fails never stopping the card from being sent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { card, text, type Reply } from '../../src/bot/reply.ts';
import { deliverReplies, MessageRefs, type MessageSurface } from '../../src/delivery/message-refs.ts';
import { AppError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import { countOperations, type CountingStore } from '../../src/store/counting-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';

const school = 'refs-school';
let dir: string;
let counted: CountingStore;
let refs: MessageRefs;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esafety-refs-'));
  counted = countOperations(createSqliteStore({ file: path.join(dir, 'esafety.sqlite') }));
  refs = new MessageRefs(counted.store, silentLogger());
});
afterAll(async () => {
  await counted.store.close();
  await rm(dir, { recursive: true, force: true });
});

const progress = (figure: number): Reply => card({ kind: 'test.progress', title: `Done ${figure}`, blocks: [], updateKey: 'test-progress' });

/** A conversation that records posts and updates; `gone` messages answer "not found" to an update. */
function recordingSurface(conversation = 'conv-1') {
  const log: string[] = [];
  const gone = new Set<string>();
  let next = 0;
  const title = (reply: Reply) => (reply.type === 'card' ? reply.card.title : reply.text);
  const surface: MessageSurface<string> = {
    platform: 'teams',
    conversation,
    post: async (replies) => void log.push(`post ${replies.map(title).join(' + ')}`),
    postUpdatable: async (reply) => {
      const id = `m${++next}`;
      log.push(`post ${title(reply)} as ${id}`);
      return id;
    },
    update: async (id, reply) => {
      if (gone.has(id)) return false;
      log.push(`update ${id} to ${title(reply)}`);
      return true;
    },
  };
  return { surface, log, gone };
}

describe('message references', () => {
  it('cost nothing for replies without an updateKey', async () => {
    const { surface, log } = recordingSurface();
    counted.reset();
    await deliverReplies(surface, [text('one'), text('two')], refs.slot(school, 'u1'));
    expect(counted.log()).toEqual([]);
    expect(log).toEqual(['post one + two']);
  });

  it('post the first card (one read, one write) and update it afterwards (one read), keeping the order of replies', async () => {
    const { surface, log } = recordingSurface();
    counted.reset();
    await deliverReplies(surface, [text('before'), progress(1), text('after')], refs.slot(school, 'u2'));
    expect(counted.log().map((e) => `${e.op} ${e.kind}`)).toEqual(['get message-ref', 'upsert message-ref']);
    counted.reset();
    await deliverReplies(surface, [progress(2)], refs.slot(school, 'u2'));
    expect(counted.log().map((e) => `${e.op} ${e.kind}`)).toEqual(['get message-ref']);
    expect(log).toEqual(['post before', 'post Done 1 as m1', 'post after', 'update m1 to Done 2']);
  });

  it('are kept per person: another person gets their own message', async () => {
    const { surface, log } = recordingSurface();
    await deliverReplies(surface, [progress(1)], refs.slot(school, 'u3'));
    await deliverReplies(surface, [progress(1)], refs.slot(school, 'u4'));
    expect(log).toEqual(['post Done 1 as m1', 'post Done 1 as m2']);
  });

  it('post a new message when the old one is gone, and remember it', async () => {
    const { surface, log, gone } = recordingSurface();
    await deliverReplies(surface, [progress(1)], refs.slot(school, 'u5'));
    gone.add('m1');
    await deliverReplies(surface, [progress(2)], refs.slot(school, 'u5'));
    await deliverReplies(surface, [progress(3)], refs.slot(school, 'u5'));
    expect(log).toEqual(['post Done 1 as m1', 'post Done 2 as m2', 'update m2 to Done 3']);
    expect((await refs.get(school, 'u5', 'test-progress'))?.message).toBe('m2');
  });

  it('post one new message, not two, when two cards arrive at once for a message that is gone', async () => {
    const { surface, log, gone } = recordingSurface();
    await deliverReplies(surface, [progress(1)], refs.slot(school, 'u8'));
    gone.add('m1');
    // The refresh job's card and the Refresh button's, delivered at the same moment.
    await Promise.all([deliverReplies(surface, [progress(2)], refs.slot(school, 'u8')), deliverReplies(surface, [progress(3)], refs.slot(school, 'u8'))]);
    expect(log).toEqual(['post Done 1 as m1', 'post Done 2 as m2', 'update m2 to Done 3']);
    expect((await refs.get(school, 'u8', 'test-progress'))?.message).toBe('m2');
  });

  it('leave a message in another conversation alone', async () => {
    const chat = recordingSurface('chat');
    const channel = recordingSurface('channel');
    await deliverReplies(chat.surface, [progress(1)], refs.slot(school, 'u6'));
    await deliverReplies(channel.surface, [progress(2)], refs.slot(school, 'u6'));
    expect(chat.log).toEqual(['post Done 1 as m1']);
    expect(channel.log).toEqual(['post Done 2 as m1']);
  });

  it('still send the card when the store fails', async () => {
    const failing: Store = {
      ...counted.store,
      get: async () => {
        throw new AppError('store_unavailable', 'down');
      },
      upsert: async () => {
        throw new AppError('store_unavailable', 'down');
      },
    };
    const { surface, log } = recordingSurface();
    await deliverReplies(surface, [progress(1)], new MessageRefs(failing, silentLogger()).slot(school, 'u7'));
    expect(log).toEqual(['post Done 1 as m1']);
  });
});
