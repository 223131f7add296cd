// Helpers for plugin answers (Exit values).
import type { Exit } from './types.ts';

export type RawBodyExit = Extract<Exit, { body: string | Buffer }> & { headers: Record<string, string> };

/** kong.response.exit with a string body (or none: ''). */
export function rawBodyExit(status: number, body: string, headers: Record<string, string>): RawBodyExit {
  return { status, body, headers };
}

/** An exit built once and returned to many requests must not be changed by any of them. */
export function freezeExit<E extends Exit>(exit: E): E {
  if (exit.headers) Object.freeze(exit.headers);
  return Object.freeze(exit);
}
