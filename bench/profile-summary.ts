/**
 * `node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top N]`: where the time went in a
 * profile written by `node --cpu-prof` (bench/turns.ts --cpu-prof writes one per target).
 */
import { formatSummary, summarizeProfile } from './lib/cpuprofile.ts';
import { intArg } from './lib/stats.ts';

const argv = process.argv.slice(2);
const files = argv.filter((arg, i) => arg.endsWith('.cpuprofile') && argv[i - 1] !== '--top');
if (files.length === 0) {
  console.error('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile... [--top N]');
  process.exit(2);
}
for (const file of files) console.log(formatSummary(file, summarizeProfile(file, intArg(argv, 'top', 15))));
