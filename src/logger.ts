/**
 * Structured logging (pino). Servers log JSON to standard output; command-line tools log to
 * standard error so their standard output stays clean for data.
 *
 * Rule for every caller: no message text, names or report content at info level, and report
 * content never. The redact list is a safety net for field names, not a licence.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level: string; destination?: 'stdout' | 'stderr'; name?: string }): Logger {
  return pino(
    {
      level: options.level,
      name: options.name ?? 'esafety-bot',
      redact: {
        paths: ['text', '*.text', 'question', '*.question', 'report', '*.report', 'userName', '*.userName', 'key', '*.key', 'password', '*.password', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination(options.destination === 'stderr' ? 2 : 1),
  );
}

/** A logger that writes nothing: for tests and the `answer` command. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
