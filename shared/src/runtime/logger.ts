import { pino, type Logger } from 'pino';

/** Paths whose values never reach a log line (ARCHITECTURE.md invariant 8). */
export const REDACT_PATHS = [
  'headers.authorization', 'headers["proxy-authorization"]', 'headers.cookie', 'headers.apikey',
  '*.headers.authorization', '*.headers["proxy-authorization"]', '*.headers.cookie', '*.headers.apikey',
  'password', '*.password', 'key', '*.key', 'secret', '*.secret',
];

export function createLogger(level: string, name: string): Logger {
  return pino({ level, name, redact: { paths: REDACT_PATHS, censor: 'REDACTED' }, base: { pid: process.pid } });
}
export type { Logger };
