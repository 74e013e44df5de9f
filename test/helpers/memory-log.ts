/** A pino logger that writes its JSON lines to memory, so tests can assert on what was logged. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/logger.ts';

export interface MemoryLog {
  log: Logger;
  /** Every line written so far, as parsed JSON. */
  lines(): Array<Record<string, any>>;
  /** Every line written so far, as raw text. */
  raw(): string[];
}

export function memoryLog(level = 'info'): MemoryLog {
  const raw: string[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      pending += String(chunk);
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        raw.push(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
      done();
    },
  });
  // pino writes synchronously to a plain stream's write(), so lines are here as soon as log calls return.
  const log = pino({ level, name: 'esafety-bot' }, stream);
  return { log, raw: () => [...raw], lines: () => raw.map((line) => JSON.parse(line)) };
}
