// Helpers for plugin answers (Exit values).
//
// SEAM(exit-body) — the plugin API has no answer with a raw body: `Exit` is either Kong's
// kong.response.error (`message`) or a JSON body (`json`). Kong's kong.response.exit(status, body?,
// headers) also sends a string body as given, or no body at all (cors' preflight 200,
// request-termination's `body` + `content_type`, and its statuses without a default message).
//
// The API addition this asks for (shared/src/plugins/types.ts):
//   export type Exit = … | { status: number; body: string; headers?: Record<string, string> };
// semantics: the DP writes `body` byte for byte (UTF-8), sets Content-Length, sets no Content-Type
// of its own (a plugin that wants one puts it in `headers`), and sends no body for HEAD.
// Until the DP knows that variant, the value below also satisfies the JSON variant, so today's DP
// answers with the right status and headers and a `null` JSON body; when sendExit checks
// `'body' in exit` first, every caller is right without a change here.
import type { Exit } from './types.ts';

export type RawBodyExit = Exit & { body: string; headers: Record<string, string> };

export function rawBodyExit(status: number, body: string, headers: Record<string, string>): RawBodyExit {
  return { status, json: null, body, headers };
}

/** An exit built once and returned to many requests must not be changed by any of them. */
export function freezeExit<E extends Exit>(exit: E): E {
  if (exit.headers) Object.freeze(exit.headers);
  return Object.freeze(exit);
}
