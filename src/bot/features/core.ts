/**
 * Everyday commands: help, whoami (so an IT admin can find the id to grant the first role), and
 * granting or revoking roles in chat (coordinators only).
 */
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { Directory } from '../directory.ts';
import { card, text } from '../reply.ts';
import { requirePermission, roleIds, roleNames, roleSchema } from '../roles.ts';
import type { Route } from '../router.ts';

const commandPattern = (words: string) => {
  // Compiled once: every text message is tested against each command before it reaches the policies.
  const pattern = new RegExp(`^/?(${words})\\b`, 'i');
  return (input: string) => pattern.test(input.trim());
};

export function coreRoutes(deps: { directory: Directory }): Route[] {
  return [
    {
      name: 'core.help',
      // "ask" is what Teams sends for the manifest's "ask" command before the question is typed.
      matchText: (input) => /^\/?(help|menu|commands|\?|hi|hello|hey|start|ask)[.!]?$/i.test(input.trim()) || input.trim() === '',
      handle: async (turn) => [
        card({
          kind: 'core.help',
          title: 'esafety-bot',
          subtitle: `${turn.school.name}: our e-safety and acceptable use policies, in chat`,
          blocks: [
            { type: 'text', text: 'Ask me anything about our policies, in your own words: "can pupils use phones in class?", "what do I do if a pupil shows me a nude?"' },
            {
              type: 'list',
              items: [
                'Ask a question: just type it, and I quote the policy that answers it.',
                'Report a concern or incident: type "report an incident".',
                'my acknowledgements: policies waiting for you to read and accept.',
                'whoami: your id, school and roles.',
                ...(turn.roles.includes('coordinator') ? ['Coordinators: "roles grant USER ROLE", "roles revoke USER ROLE", "roles list", "groups set USER teaching", "policies", "policies import", "policies publish DOC due YYYY-MM-DD", "acks status DOC", "alert [critical] TEXT", "questions waiting", "questions report", "reviews", "sync staff".'] : []),
                ...(turn.roles.some((r) => ['dsl', 'deputy-dsl', 'management', 'headteacher', 'chair-of-governors'].includes(r)) ? ['Cases: "cases", "case INC-YYYY-NNNN", "governors report".'] : []),
              ],
            },
          ],
        }),
      ],
    },
    {
      name: 'core.whoami',
      matchText: commandPattern('whoami|who am i'),
      handle: async (turn) => [
        card({
          kind: 'core.whoami',
          title: 'Who you are to me',
          blocks: [
            {
              type: 'facts',
              facts: [
                { title: 'User id', value: turn.user.id },
                { title: 'Platform', value: turn.inbound.platform },
                { title: 'School', value: `${turn.school.name} (${turn.school.id})` },
                { title: 'Roles', value: turn.roles.join(', ') },
              ],
            },
            { type: 'text', style: 'muted', text: 'An IT admin grants roles with: esafety-bot roles grant --school SCHOOL --user USER_ID --role ROLE' },
          ],
        }),
      ],
    },
    {
      name: 'core.roles',
      matchText: commandPattern('roles'),
      handle: async (turn) => {
        requirePermission(turn.roles, 'roles.manage');
        const words = (turn.inbound.text ?? '').trim().split(/\s+/).slice(1);
        const [action, userId, role] = words;
        if (!action || action === 'list') {
          const users = (await deps.directory.listUsers(turn.school.id)).filter((user) => user.roles.length > 0);
          return [
            card({
              kind: 'core.roles',
              title: 'Roles in this school',
              blocks: users.length
                ? [{ type: 'facts', facts: users.map((user) => ({ title: user.name ? `${user.name} (${user.id})` : user.id, value: user.roles.join(', ') })) }]
                : [{ type: 'text', text: 'Nobody holds a role beyond staff yet.' }],
            }),
          ];
        }
        if ((action !== 'grant' && action !== 'revoke') || !userId || !role) {
          return [text(`Use "roles grant USER_ID ROLE" or "roles revoke USER_ID ROLE". Roles: ${roleIds.filter((r) => r !== 'staff').join(', ')}.`)];
        }
        const parsedRole = roleSchema.safeParse(role);
        if (!parsedRole.success || parsedRole.data === 'staff') {
          throw new AppError('validation_failed', `"${role}" is not a role. Roles: ${roleIds.filter((r) => r !== 'staff').join(', ')}.`);
        }
        z.string().min(1).max(200).parse(userId);
        const roles = action === 'grant'
          ? await deps.directory.grantRole(turn.school.id, userId, parsedRole.data)
          : await deps.directory.revokeRole(turn.school.id, userId, parsedRole.data);
        turn.log.info({ action, role: parsedRole.data }, 'role changed in chat');
        return [text(`${action === 'grant' ? 'Granted' : 'Revoked'} ${roleNames[parsedRole.data].toLowerCase()} for ${userId}. Their roles now: ${roles.join(', ')}.`)];
      },
    },
  ];
}
