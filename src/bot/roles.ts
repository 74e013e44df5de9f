/**
 * Roles per school and the one place they are checked. Everyone is `staff`; the others are granted
 * by a coordinator in chat or with `esafety-bot roles grant`.
 */
import { z } from 'zod';
import { AppError } from '../errors.ts';

export const roleIds = ['staff', 'coordinator', 'dsl', 'deputy-dsl', 'management', 'headteacher', 'governor', 'chair-of-governors'] as const;
export type Role = (typeof roleIds)[number];
export const roleSchema = z.enum(roleIds);

export const roleNames: Record<Role, string> = {
  staff: 'Staff',
  coordinator: 'E-safety coordinator',
  dsl: 'Designated safeguarding lead',
  'deputy-dsl': 'Deputy designated safeguarding lead',
  management: 'Management team',
  headteacher: 'Headteacher',
  governor: 'Governor',
  'chair-of-governors': 'Chair of governors',
};

/** What each permission needs: any one of the listed roles. */
const permissions = {
  'roles.manage': ['coordinator'],
  'policies.import': ['coordinator'],
  'policies.publish': ['coordinator'],
  'alerts.broadcast': ['coordinator'],
  'roster.sync': ['coordinator'],
  'qa.answerEscalations': ['coordinator'],
  'qa.report': ['coordinator', 'headteacher', 'governor', 'chair-of-governors'],
  'cases.work': ['dsl', 'deputy-dsl', 'management'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof permissions;

export function hasPermission(roles: readonly Role[], permission: Permission): boolean {
  const allowed: readonly Role[] = permissions[permission];
  return roles.some((role) => allowed.includes(role));
}

/** Throws AppError('forbidden') naming the roles that would allow it. */
export function requirePermission(roles: readonly Role[], permission: Permission): void {
  if (!hasPermission(roles, permission)) {
    const allowed = permissions[permission].map((role) => roleNames[role as Role].toLowerCase()).join(' or ');
    throw new AppError('forbidden', `Only the ${allowed} can do that.`);
  }
}

/** Every user holds `staff`; stored roles come on top. */
export function effectiveRoles(stored: readonly string[] | undefined): Role[] {
  const roles = new Set<Role>(['staff']);
  for (const role of stored ?? []) if (roleSchema.safeParse(role).success) roles.add(role as Role);
  return [...roles];
}
