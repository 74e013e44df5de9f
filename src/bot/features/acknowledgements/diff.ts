/** What changed between two versions of a policy, section by section, for the "what changed" card. */
import { createHash } from 'node:crypto';
import type { PolicySection } from '../../../policies/markdown.ts';

export interface PolicyDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

const fingerprint = (section: PolicySection) => createHash('sha256').update(section.text.replace(/\s+/g, ' ').trim()).digest('hex');

/** Compares by section id (the heading slug); a renamed section shows as removed plus added. */
export function diffSections(previous: PolicySection[] | undefined, next: PolicySection[]): PolicyDiff {
  if (!previous) return { added: next.map((s) => s.heading), removed: [], changed: [] };
  const before = new Map(previous.map((s) => [s.id, s]));
  const after = new Map(next.map((s) => [s.id, s]));
  return {
    added: next.filter((s) => !before.has(s.id)).map((s) => s.heading),
    removed: previous.filter((s) => !after.has(s.id)).map((s) => s.heading),
    changed: next.filter((s) => before.has(s.id) && fingerprint(before.get(s.id)!) !== fingerprint(s)).map((s) => s.heading),
  };
}
