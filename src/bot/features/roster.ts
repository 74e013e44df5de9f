/**
 * "sync staff": a coordinator re-reads the rosters of the school's teams and workspaces now, rather
 * than waiting for the next membership change, and sees what changed. Typed in a Teams team's
 * channel, it also confirms that team as a staff team: the only way a team's members become staff
 * (a class team would make pupils staff). Audited like other coordinator actions (refusals too).
 */
import type { AuditLog } from '../audit.ts';
import { text } from '../reply.ts';
import { hasPermission, requirePermission } from '../roles.ts';
import { sourceIdOf, type Roster, type SyncCounts } from '../roster.ts';
import type { Route } from '../router.ts';

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

export function rosterRoutes(deps: { roster: Roster; audit: AuditLog }): Route[] {
  const { roster, audit } = deps;
  return [
    {
      name: 'roster.sync',
      matchText: (input) => /^\/?sync staff[.!]?$/i.test(input.trim()),
      handle: async (turn) => {
        if (!hasPermission(turn.roles, 'roster.sync')) {
          await audit.record(turn.school.id, { actor: turn.user.id, action: 'roster.sync', outcome: 'refused' });
          requirePermission(turn.roles, 'roster.sync');
        }
        // In Slack the workspace asked from is read with its install's token, whether or not it was followed before.
        if (turn.inbound.platform === 'slack' && turn.inbound.tenantId) {
          await roster.noteSource(turn.school.id, { platform: 'slack', teamId: turn.inbound.tenantId, access: {} });
        }
        // In a Teams team's channel, the coordinator confirms that team as a staff team (even one the bot joined before the school was registered), and it is read too.
        const inTeam = turn.inbound.platform === 'teams' ? turn.inbound.team : undefined;
        if (inTeam) {
          await roster.noteSource(turn.school.id, { platform: 'teams', teamId: inTeam.id, access: inTeam.access });
          const sourceId = sourceIdOf('teams', inTeam.id);
          if (await roster.confirmSource(turn.school.id, sourceId, turn.user.id)) {
            await audit.record(turn.school.id, { actor: turn.user.id, action: 'roster.confirm', target: sourceId, outcome: 'ok', detail: 'Teams team confirmed as a staff team' });
          }
        }
        const results = await roster.syncSchool(turn.school.id);
        const candidates = inTeam ? [] : await roster.candidates(turn.school.id);
        const howToConfirm = candidates.length > 0
          ? [`${plural(candidates.length, 'Teams team')} I am in ${candidates.length === 1 ? 'is' : 'are'} not synced: no coordinator has confirmed ${candidates.length === 1 ? 'it' : 'them'} as a staff team. To confirm one, mention me with "sync staff" in one of its channels (staff teams only, never a class team).`]
          : [];
        if (results.length === 0) {
          return [text([
            'I do not sync any team or workspace of this school yet, so there is no roster to read. In Teams, add me to your staff team and mention me with "sync staff" in one of its channels; in Slack, type "sync staff" in my direct messages.',
            ...howToConfirm,
          ].join('\n'))];
        }
        const totals: SyncCounts = { added: 0, updated: 0, unchanged: 0, skipped: 0 };
        for (const { counts } of results) for (const key of Object.keys(totals) as Array<keyof SyncCounts>) totals[key] += counts?.[key] ?? 0;
        const failures = results.filter((result) => result.failure);
        const read = results.length - failures.length;
        const summary = `${totals.added} added, ${totals.updated} updated, ${totals.unchanged} unchanged`;
        await audit.record(turn.school.id, {
          actor: turn.user.id,
          action: 'roster.sync',
          outcome: 'ok',
          detail: `${summary}; ${read} read, ${failures.length} not read`,
        });
        const lines = [
          read > 0 ? `Staff directory synced from ${plural(read, 'team or workspace', 'teams or workspaces')}: ${summary}.` : 'Nothing was synced.',
          ...(totals.skipped > 0 ? [`${plural(totals.skipped, 'entry', 'entries')} skipped (bots and accounts I cannot message).`] : []),
          ...failures.map((result) => `${result.source.platform === 'teams' ? 'A Teams team' : 'A Slack workspace'} could not be read: ${result.failure}.`),
          ...(inTeam ? ['Reminder: sync only staff teams, never a class team: everyone in a synced team is sent staff alerts and policies.'] : howToConfirm),
        ];
        return [text(lines.join('\n'))];
      },
    },
  ];
}
