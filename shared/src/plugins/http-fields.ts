// Config fields whose values end up in HTTP headers. Validated at write time so a snapshot can never
// carry a header a DP would refuse to send (Node throws on CR, LF or NUL in a value) or a name that
// splits a header.
// A header name listed in another header's value (CORS lists) is `httpToken()` from entities/fields.ts.
import { z } from 'zod';
import { MAX_TEXT_LENGTH } from '../entities/fields.ts';

const KONG_HEADER_NAME = /^[A-Za-z0-9_-]+$/;
/**
 * RFC 9110 §5.5 field value as Node sends it raw: visible ASCII, obs-text (Latin-1), space and tab;
 * no CR, LF, NUL or other controls, and nothing above U+00FF (Node refuses those).
 */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Kong's typedefs.header_name, with its message. */
export const kongHeaderName = () =>
  z.string().min(1, 'length must be at least 1').max(256, 'length must be at most 256').refine((v) => KONG_HEADER_NAME.test(v), {
    error: (i) => `bad header name '${i.input as string}', allowed characters are A-Z, a-z, 0-9, '_', and '-'`,
  });

/** A header value. */
export const headerValue = () =>
  z.string().max(MAX_TEXT_LENGTH, `length must be at most ${MAX_TEXT_LENGTH}`).refine((v) => FIELD_VALUE.test(v), { error: 'must not contain control characters (CR, LF, NUL…)' });
