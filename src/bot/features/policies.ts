/**
 * Coordinator commands about the policy set: list what is loaded, and import the policy folder
 * (a new version of each changed document; unchanged ones left alone).
 */
import { loadPolicyDirectory } from '../../policies/load.ts';
import type { PolicyLibrary } from '../../policies/library.ts';
import type { AuditLog } from '../audit.ts';
import { card, text } from '../reply.ts';
import { hasPermission, requirePermission } from '../roles.ts';
import type { Route } from '../router.ts';

export function policyRoutes(deps: { library: PolicyLibrary; audit: AuditLog; policiesDir: string }): Route[] {
  return [
    {
      name: 'policies.list',
      matchText: (input) => /^\/?(policies|list policies)$/i.test(input),
      handle: async (turn) => {
        const entries = await deps.library.list(turn.school.id);
        if (entries.length === 0) return [text('No policies have been imported yet.')];
        return [
          card({
            kind: 'policies.list',
            title: 'Our policies',
            blocks: [{ type: 'facts', facts: entries.map((e) => ({ title: e.title, value: `version ${e.version}${e.meta.review ? `, review due ${e.meta.review}` : ''}${e.meta.owner ? `, owner: ${e.meta.owner}` : ''}` })) }],
          }),
        ];
      },
    },
    {
      name: 'policies.import',
      matchText: (input) => /^\/?policies import$/i.test(input),
      handle: async (turn) => {
        if (!hasPermission(turn.roles, 'policies.import')) {
          await deps.audit.record(turn.school.id, { actor: turn.user.id, action: 'policies.import', outcome: 'refused' });
          requirePermission(turn.roles, 'policies.import');
        }
        const loaded = await loadPolicyDirectory(deps.policiesDir);
        const report = await deps.library.import(turn.school.id, loaded.documents, turn.user.id);
        await deps.audit.record(turn.school.id, { actor: turn.user.id, action: 'policies.import', outcome: 'ok', detail: `added ${report.added.length}, updated ${report.updated.length}` });
        return [
          card({
            kind: 'policies.import',
            title: 'Policies imported',
            blocks: [
              { type: 'facts', facts: [{ title: 'New', value: report.added.join(', ') || 'none' }, { title: 'New version', value: report.updated.join(', ') || 'none' }, { title: 'Unchanged', value: String(report.unchanged.length) }] },
              ...(loaded.errors.length ? [{ type: 'text' as const, style: 'attention' as const, text: `Not loaded:\n${loaded.errors.join('\n')}` }] : []),
              { type: 'text', style: 'muted', text: 'Importing does not message anyone.' },
            ],
          }),
        ];
      },
    },
  ];
}
