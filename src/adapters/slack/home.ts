/**
 * The App Home tab: published (views.publish) when a person opens it, and again after they use one
 * of its buttons, so an acknowledgement accepted there leaves the list at once. It shows the
 * feature's sections for the person (their pending acknowledgements), the help and the shortcuts.
 *
 * A workspace that is linked to no school gets a short explanation and nothing else: no turn runs,
 * nothing is stored, no direct message is opened.
 */
import type { Directory } from '../../bot/directory.ts';
import type { Card, Reply } from '../../bot/reply.ts';
import type { Logger } from '../../logger.ts';
import { renderHome, type HomeView } from './block-kit.ts';

/** Who the Home tab is for: the workspace's school, the workspace and the person. */
export interface HomeViewer {
  school: string;
  teamId: string;
  userId: string;
}

/** A feature's first cards on a person's Home tab (the acknowledgements feature: what they have to accept). */
export type HomeSections = (viewer: HomeViewer) => Promise<Card[]>;

export interface HomeDeps {
  directory: Pick<Directory, 'schoolForTenant'>;
  sections?: HomeSections;
  log: Logger;
}

export interface HomeRequest {
  teamId: string;
  userId: string;
  /** What the core answers "help" with for this person (a turn, so their reference is kept too). */
  help: () => Promise<Reply[]>;
  /** views.publish for this person. */
  publish: (view: HomeView) => Promise<unknown>;
}

export const NOT_SET_UP_HOME =
  'Hello! This workspace is not linked to a school yet, so I cannot help here. Please ask your IT team to register it (esafety-bot schools add --slack-team).';

/** The Home tab of a workspace linked to no school. */
export function notSetUpHomeView(): HomeView {
  return {
    type: 'home',
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'esafety-bot' } },
      { type: 'section', text: { type: 'plain_text', text: NOT_SET_UP_HOME } },
    ],
  };
}

/** Whether a block_actions payload came from a Home tab (its buttons answer in the DM, then the Home is refreshed). */
export function isHomeView(view: unknown): boolean {
  return Boolean(view && typeof view === 'object' && (view as { type?: unknown }).type === 'home');
}

export function createHome(deps: HomeDeps) {
  return {
    async publish(request: HomeRequest): Promise<void> {
      const school = await deps.directory.schoolForTenant('slack', request.teamId);
      if (!school) {
        await request.publish(notSetUpHomeView());
        return;
      }
      const help = await request.help();
      // The help and the shortcuts are still worth showing when a feature's sections cannot be read.
      const sections = deps.sections
        ? await deps.sections({ school, teamId: request.teamId, userId: request.userId }).catch((error: unknown) => {
            deps.log.warn({ err: { name: (error as Error).name } }, 'slack home sections not shown');
            return [];
          })
        : [];
      await request.publish(renderHome({ sections, help }));
    },
  };
}
