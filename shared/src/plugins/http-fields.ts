// Config fields whose values end up in HTTP headers. Validated at write time so a snapshot can never
// carry a header a DP would refuse to send (Node throws on CR, LF or NUL in a value) or a name that
// splits a header.
import { z } from 'zod';

const KONG_HEADER_NAME = /^[A-Za-z0-9_-]+$/;
/** RFC 9110 §5.6.2 token: what a field name may be (wider than Kong's header_name). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 §5.5 field value: visible ASCII, obs-text, space and tab; no CR, LF, NUL or other controls. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Kong's typedefs.header_name, with its message. */
export const kongHeaderName = () =>
  z.string().min(1, 'length must be at least 1').refine((v) => KONG_HEADER_NAME.test(v), {
    error: (i) => `bad header name '${i.input as string}', allowed characters are A-Z, a-z, 0-9, '_', and '-'`,
  });

/** A header name listed in another header's value (CORS lists). */
export const headerToken = () =>
  z.string().refine((v) => TOKEN.test(v), { error: (i) => `'${i.input as string}' is not a valid header name` });

/** A header value. */
export const headerValue = () =>
  z.string().refine((v) => FIELD_VALUE.test(v), { error: 'must not contain control characters (CR, LF, NUL…)' });
