import { pino, type Logger } from 'pino';

/** Paths whose values never reach a log line (ARCHITECTURE.md invariant 8). */
export const REDACT_PATHS = [
  'headers.authorization', 'headers["proxy-authorization"]', 'headers.cookie', 'headers.apikey',
  '*.headers.authorization', '*.headers["proxy-authorization"]', '*.headers.cookie', '*.headers.apikey',
  'password', '*.password', 'key', '*.key', 'secret', '*.secret',
];

export function createLogger(level: string, name: string): Logger {
  return pino({ ...loggerOptions(level), name, base: { pid: process.pid } });
}

/** What every Portico logger shares (a second destination, as the access log's, keeps the same lines). */
export function loggerOptions(level: string): { level: string; redact: { paths: string[]; censor: string } } {
  return { level, redact: { paths: REDACT_PATHS, censor: 'REDACTED' } };
}
export type { Logger };

/** Query arguments that carry credentials by default (key-auth `apikey`, jwt `jwt`). */
export const SECRET_QUERY_NAMES: readonly string[] = ['apikey', 'jwt'];

const decodeName = (raw: string): string => {
  const plus = raw.includes('+') ? raw.replaceAll('+', ' ') : raw;
  if (!plus.includes('%')) return plus.toLowerCase();
  try { return decodeURIComponent(plus).toLowerCase(); } catch { return plus.toLowerCase(); }
};

/**
 * A request target for a log line, with the values of credential-carrying query arguments
 * replaced: `/a?apikey=k&x=1` → `/a?apikey=[REDACTED]&x=1`. `names` are lower-case; argument
 * names are compared decoded and case-insensitively (`api%6bey=` is `apikey=`), so a spelling the
 * plugin accepts cannot slip a key into the log. pino's `redact` works on object paths and cannot
 * reach into a URL string, hence this.
 */
export function redactQuery(target: string, names: ReadonlySet<string>): string {
  const q = target.indexOf('?');
  if (q === -1) return target;
  let out = target.slice(0, q + 1);
  let changed = false;
  const query = target.slice(q + 1);
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const part = query.slice(start, end);
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (eq !== -1 && names.has(decodeName(name))) { out += `${name}=[REDACTED]`; changed = true; } else out += part;
    if (end < query.length) out += '&';
    start = end + 1;
  }
  return changed ? out : target;
}
