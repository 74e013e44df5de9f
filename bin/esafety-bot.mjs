#!/usr/bin/env node
// Entry point for `npx esafety-bot` and `npm start`. The source is TypeScript run through tsx, so a
// fresh clone needs no build step.
import { register } from 'tsx/esm/api';

// restify 11 reads process.binding('http_parser') at import (DEP0111), a known and harmless warning
// that would otherwise greet every user of the command line. Other warnings still print.
process.on('warning', () => undefined);
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const code = typeof rest[0] === 'object' ? rest[0]?.code : rest[1];
  if (code === 'DEP0111') return;
  emitWarning(warning, ...rest);
};
register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
