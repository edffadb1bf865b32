import { type DestinationStream, type Logger, pino } from 'pino';

/** Paths pino censors wherever they appear: credentials must never reach a log line. */
export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  'x-api-key',
  '*["x-api-key"]',
  '*.headers["x-api-key"]',
  '*["api-key"]',
  '*.headers["api-key"]',
  'apiKey',
  '*.apiKey',
  'key',
  '*.key',
];

/** The process logger (pino, JSON lines). Tests pass their own destination. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'ringfence' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

export type { Logger };
