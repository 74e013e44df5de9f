/**
 * The App Home publisher (src/adapters/slack/home.ts) on its own: what it publishes for a school's
 * workspace, for a workspace linked to no school, and when a feature's sections cannot be read.
 */
import { describe, expect, it } from 'vitest';
import { createHome, isHomeView, notSetUpHomeView, type HomeViewer } from '../../../src/adapters/slack/home.ts';
import type { HomeView } from '../../../src/adapters/slack/block-kit.ts';
import { text, type Card } from '../../../src/bot/reply.ts';
import { blocksText, viewProblems } from '../../helpers/fake-slack.ts';
import { memoryLog } from '../../helpers/memory-log.ts';

const directory = { schoolForTenant: async (_platform: 'teams' | 'slack', team: string) => (team === 'T0KNOWN' ? 'known-school' : undefined) };
const pending: Card = {
  kind: 'ack.request',
  title: 'Please read and accept: Staff AUP',
  blocks: [{ type: 'text', text: 'What changed' }],
  actions: [
    { type: 'openUrl', title: 'Read the policy', url: 'https://bot.example/read/x' },
    { type: 'submit', title: 'I have read and accept', data: { route: 'ack.accept', campaignId: 'camp-1' } },
  ],
};

async function publish(teamId: string, sections?: (viewer: HomeViewer) => Promise<Card[]>) {
  const logs = memoryLog('info');
  const published: HomeView[] = [];
  let helpTurns = 0;
  await createHome({ directory, sections, log: logs.log }).publish({
    teamId,
    userId: 'U0ME',
    help: async () => {
      helpTurns++;
      return [text('How I can help.')];
    },
    publish: async (view) => published.push(view),
  });
  return { published, helpTurns, logs };
}

describe('the App Home tab', () => {
  it('shows the sections for the school and the person first, then the help and the shortcuts', async () => {
    const viewers: HomeViewer[] = [];
    const { published, helpTurns } = await publish('T0KNOWN', async (viewer) => {
      viewers.push(viewer);
      return [pending];
    });
    expect(viewers).toEqual([{ school: 'known-school', teamId: 'T0KNOWN', userId: 'U0ME' }]);
    expect(helpTurns).toBe(1);
    expect(published).toHaveLength(1);
    const shown = blocksText(published[0]!.blocks);
    expect(shown.indexOf('Please read and accept')).toBeLessThan(shown.indexOf('How I can help.'));
    expect(shown).toContain('Shortcuts');
    expect(viewProblems(published[0])).toEqual([]);
  });

  it('still shows the help and the shortcuts when the sections cannot be read, logging only the error\'s name', async () => {
    const { published, logs } = await publish('T0KNOWN', async () => {
      throw new Error('store down, secret detail');
    });
    expect(blocksText(published[0]!.blocks)).toContain('How I can help.');
    expect(logs.raw().join('\n')).not.toContain('secret detail');
    expect(logs.lines().map((line) => line.msg)).toContain('slack home sections not shown');
  });

  it('tells a workspace linked to no school so, running no turn and asking no feature', async () => {
    let asked = false;
    const { published, helpTurns } = await publish('T0OTHER', async () => {
      asked = true;
      return [pending];
    });
    expect(helpTurns).toBe(0);
    expect(asked).toBe(false);
    expect(published).toEqual([notSetUpHomeView()]);
    expect(blocksText(published[0]!.blocks)).toMatch(/not linked to a school yet/);
    expect(viewProblems(published[0])).toEqual([]);
  });

  it('tells a Home view from a modal or a message', () => {
    expect(isHomeView({ type: 'home', id: 'V1' })).toBe(true);
    expect(isHomeView({ type: 'modal' })).toBe(false);
    expect(isHomeView(undefined)).toBe(false);
    expect(isHomeView('home')).toBe(false);
  });
});
