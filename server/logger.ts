import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Structured JSON logs, one object per line. Credentials never reach a log: the
 * Authorization header and anything named like a key or secret are redacted.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'conveyor', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization',
          'headers.authorization',
          '*.apiKey',
          '*.secret',
          '*.password',
          '*.token',
          'apiKey',
          'key',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
