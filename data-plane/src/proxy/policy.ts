// Per-request rules fixed at build time: the retry policy (nginx's proxy_next_upstream), the size
// and time limits on the proxy boundary, and request ids.
import { randomBytes } from 'node:crypto';

/** Kong's `client_body_timeout` default: 60 s between two reads of a buffered body. */
export const DEFAULT_CLIENT_BODY_TIMEOUT_MS = 60_000;
/** Requests whose body a plugin must read are buffered up to this size (then 413). */
export const MAX_BUFFERED_BODY = 8 * 1024 * 1024;
/**
 * nginx's lingering_time: a body over the buffering limit is read and dropped for at most this long
 * before the 413 goes out, so the client is not reset mid-upload and can read the answer.
 */
export const LINGERING_TIME_MS = 30_000;

/** RFC 9110 §9.2.2. Only these are replayed once any byte of them may have reached the upstream. */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);
/** Failures to reach the upstream at all. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_SOCKET']);
export const TIMEOUT_ERRORS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'WRITE_TIMEOUT']);
/** Failures after sending that an idempotent request may be replayed on (a keep-alive race, a slow target). */
const REPLAYABLE_AFTER_SEND = new Set(['ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);

/**
 * nginx's `proxy_next_upstream` rule (review C2). A request is tried again only when a copy of it
 * still exists (no body, or a buffered one) and either nothing of it was sent (undici calls
 * `onConnect` right before writing the request head, so an error before that is a failed connect)
 * or it is idempotent (RFC 9110 §9.2.2). A POST, PATCH, LOCK or any other method is never replayed
 * once sent: not on a headers timeout, not on a reset.
 */
export function mayRetry(method: string, replayable: boolean, sent: boolean, code: string): boolean {
  if (!replayable) return false;
  if (!sent) return CONNECT_ERRORS.has(code);
  return IDEMPOTENT.has(method) && REPLAYABLE_AFTER_SEND.has(code);
}

// Request ids: 32 hex chars, a random per-process prefix and a counter. Unique without paying for
// a random UUID per request; not a secret, so unpredictability is not needed.
const ID_PREFIX = randomBytes(8).toString('hex');
let idCounter = 0;
export function nextRequestId(): string {
  idCounter = (idCounter + 1) % 0x1_0000_0000;
  return ID_PREFIX + '00000000' + idCounter.toString(16).padStart(8, '0');
}

