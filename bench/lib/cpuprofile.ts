/**
 * Reads a V8 .cpuprofile (written by `node --cpu-prof`) and says where the time went: self time
 * by function, inclusive time by function, and self time by area (a package in node_modules, a
 * folder of src/, Node's internals, the garbage collector, idle).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  self: Array<{ key: string; ms: number }>;
  inclusive: Array<{ key: string; ms: number }>;
  areas: Array<{ key: string; ms: number }>;
  /** Every area, not only the top ones (for comparing two profiles). */
  allAreas: Map<string, number>;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const src = url.indexOf('/main/');
  if (src >= 0) return url.slice(src + '/main/'.length);
  return url.replace(/^file:\/\//, '');
}

export function areaOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return '(program)';
    return '(native)';
  }
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const m = /\/main\/((?:src|test|bench)\/(?:[^/]+\/)?)/.exec(url);
  if (m) return m[1]!.replace(/\/$/, '').replace(/^(src\/[^/]+)\.ts$/, '$1');
  return shortUrl(url);
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const keyOf = (node: ProfileNode) => `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}${node.callFrame.url ? `:${node.callFrame.lineNumber + 1}` : ''}`;

  const selfMicros = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i + 1] ?? 0; // a sample's time is the gap to the next one
    selfMicros.set(profile.samples[i]!, (selfMicros.get(profile.samples[i]!) ?? 0) + delta);
    total += delta;
  }

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let idle = 0;
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id)!;
    const name = node.callFrame.functionName;
    if (name === '(idle)') idle += micros;
    self.set(keyOf(node), (self.get(keyOf(node)) ?? 0) + micros);
    const area = areaOf(node.callFrame.url, name);
    areas.set(area, (areas.get(area) ?? 0) + micros);
    // Inclusive: credit every distinct function on the stack once.
    const seen = new Set<string>();
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const key = keyOf(byId.get(cursor)!);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + micros);
    }
  }
  const sorted = (map: Map<string, number>, filter: (key: string) => boolean = () => true) =>
    [...map].filter(([key]) => filter(key)).sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, micros]) => ({ key, ms: micros / 1000 }));
  const notMeta = (key: string) => !/^\((root|idle|program|garbage collector)\)/.test(key);
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    busyMs: (total - idle) / 1000,
    self: sorted(self, (key) => !key.startsWith('(idle)')),
    inclusive: sorted(inclusive, notMeta),
    areas: sorted(areas, (key) => key !== '(idle)'),
    allAreas: new Map([...areas].map(([key, micros]) => [key, micros / 1000])),
  };
}

export function formatSummary(label: string, summary: ProfileSummary): string {
  const pct = (value: number) => `${((100 * value) / summary.busyMs).toFixed(1).padStart(5)}%`;
  const lines = [`${label}: ${summary.busyMs.toFixed(0)} ms busy of ${summary.totalMs.toFixed(0)} ms profiled (percentages are of busy time)`];
  lines.push('  self time by area:');
  for (const row of summary.areas) lines.push(`    ${pct(row.ms)}  ${row.ms.toFixed(0).padStart(6)} ms  ${row.key}`);
  lines.push('  self time by function:');
  for (const row of summary.self) lines.push(`    ${pct(row.ms)}  ${row.ms.toFixed(0).padStart(6)} ms  ${row.key}`);
  lines.push('  inclusive time by function:');
  for (const row of summary.inclusive) lines.push(`    ${pct(row.ms)}  ${row.ms.toFixed(0).padStart(6)} ms  ${row.key}`);
  return lines.join('\n');
}

/**
 * Self time per turn by area in two profiles side by side, largest difference first: where the
 * extra time of `a` over `b` goes.
 */
export function compareAreas(a: { label: string; summary: ProfileSummary; turns: number }, b: { label: string; summary: ProfileSummary; turns: number }, top = 15): string {
  const keys = new Set([...a.summary.allAreas.keys(), ...b.summary.allAreas.keys()]);
  keys.delete('(idle)');
  const rows = [...keys].map((key) => {
    const x = (a.summary.allAreas.get(key) ?? 0) / a.turns;
    const y = (b.summary.allAreas.get(key) ?? 0) / b.turns;
    return { key, x, y, diff: x - y };
  }).sort((p, q) => q.diff - p.diff);
  const totalX = a.summary.busyMs / a.turns;
  const totalY = b.summary.busyMs / b.turns;
  const lines = [`CPU per turn by area (self time, ms/turn): ${a.label} ${totalX.toFixed(3)} vs ${b.label} ${totalY.toFixed(3)}, difference ${(totalX - totalY).toFixed(3)}`];
  lines.push(`  ${'area'.padEnd(28)} ${a.label.padStart(12)} ${b.label.padStart(12)} ${'difference'.padStart(11)}`);
  for (const row of rows.slice(0, top)) lines.push(`  ${row.key.padEnd(28)} ${row.x.toFixed(3).padStart(12)} ${row.y.toFixed(3).padStart(12)} ${(row.diff >= 0 ? '+' : '') + row.diff.toFixed(3).padStart(10)}`);
  return lines.join('\n');
}
