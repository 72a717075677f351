import { pino, type Logger as PinoLogger } from 'pino';

/** Structured JSON logs on stderr (stdout stays free for a CLI's output). */
export type Logger = PinoLogger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(level: LogLevel = 'info'): Logger {
  return pino(
    {
      level,
      base: undefined,
      // Secrets never reach a log line, whatever a caller passes in.
      redact: { paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'apiKey', '*.apiKey'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
