// Field builders that give zod schemas Kong's validation messages (reference/kong-compat.md §1.7).
// Every entity and plugin schema is written with these, so the admin API's `fields` errors read
// exactly as Kong's do and the schema stays the single source of truth for types and defaults.
import { z } from 'zod';
import { isReference, referenceError } from '../vault/index.ts';

/** Kong's message for a missing or null required value. */
export const REQUIRED = 'required field missing';

function typeMessage(expected: string): string {
  switch (expected) {
    case 'number': return 'expected a number';
    case 'int': return 'expected an integer';
    case 'string': return 'expected a string';
    case 'boolean': return 'expected a boolean';
    case 'object': case 'record': case 'map': return 'expected a record';
    case 'array': case 'set': case 'tuple': return 'expected a set';
    default: return `expected a ${expected}`;
  }
}

// One error map for every schema: Kong's wording for zod's issue codes.
z.config({
  customError(issue) {
    if (issue.code === 'invalid_type') {
      if (issue.input === undefined || issue.input === null) return REQUIRED;
      return typeMessage(issue.expected as string);
    }
    if (issue.code === 'invalid_value') return `expected one of: ${issue.values.join(', ')}`;
    if (issue.code === 'unrecognized_keys') return 'unknown field';
    // A record key that its key schema refused: that schema's own message (`bad header name`).
    if (issue.code === 'invalid_key') return issue.issues[0]?.message;
    return undefined;
  },
});

export const int = (min: number, max: number) =>
  z.int({ error: (i) => (i.input == null ? REQUIRED : 'expected an integer') })
    .min(min, `value should be between ${min} and ${max}`)
    .max(max, `value should be between ${min} and ${max}`);

export const bool = () => z.boolean();

/**
 * The longest single-line string any field takes. Every string is copied into each snapshot, the
 * snapshot is rebuilt and decoded on every change, and a 50 MB tag made each later change stall
 * the proxy for seconds (probe 4.4): no field needs more than this.
 */
export const MAX_TEXT_LENGTH = 4096;
/** Names, hosts and header names: far above any real one, low enough to echo in an error. */
export const MAX_NAME_LENGTH = 256;
/** The longest multi-line value (PEM keys, a configured response body). */
export const MAX_MULTILINE_LENGTH = 65_536;
// Control characters end up in upstream request heads and log lines, where CR and LF split a
// header or a record (probe 1.14, 3.6) and NUL cuts a C string (Postgres refuses it outright).
// HTAB is the one control character RFC 9110 §5.5 allows in a field value.
const NO_CONTROL = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
const NO_NUL = /^[^\x00]*$/;
export const CONTROL_MESSAGE = 'must not contain control characters (CR, LF, NUL, …)';

/** A single-line string: bounded, no CR, LF, NUL or other control character except tab. */
export const text = (max = MAX_TEXT_LENGTH) =>
  z.string().max(max, `length must be at most ${max}`).regex(NO_CONTROL, CONTROL_MESSAGE);
/** A multi-line string (PEM, a response body): bounded, no NUL. */
export const multiline = (max = MAX_MULTILINE_LENGTH) =>
  z.string().max(max, `length must be at most ${max}`).regex(NO_NUL, 'must not contain NUL');
export const str = () => text().min(1, 'length must be at least 1');
/**
 * A secret that may instead be a vault reference (`{vault://env/NAME}`, Kong's `referenceable`),
 * resolved on each data plane from its own environment; a malformed reference is refused here.
 */
export const referenceable = (field: z.ZodString) => field.superRefine((v, ctx) => {
  const problem = isReference(v) ? referenceError(v) : null;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
}).meta({ referenceable: true });

/**
 * Object keys that reach JavaScript's prototype machinery when a body or config is walked with
 * plain objects (probe 4.1, 4.2). Refused wherever a client names a key: admin bodies, route
 * header and query rule names.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
export const reservedKeyMessage = (key: string) => `'${key}' is a reserved name`;

// RFC 9110 §5.6.2: a field name is a token of tchar.
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** An HTTP field name (or a query argument name matched like one): an RFC 9110 token, not a reserved key. */
export const httpToken = (message = 'bad header name') =>
  z.string().superRefine((v, ctx) => {
    if (v.length > MAX_NAME_LENGTH) ctx.addIssue({ code: 'custom', message: `length must be at most ${MAX_NAME_LENGTH}` });
    else if (!HTTP_TOKEN.test(v)) ctx.addIssue({ code: 'custom', message });
    else if (RESERVED_KEYS.has(v)) ctx.addIssue({ code: 'custom', message: reservedKeyMessage(v) });
  });
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values);

/** A set of strings (Kong "set"): duplicates are an error, order is kept. */
export const set = <T extends z.ZodType>(item: T) =>
  z.array(item).superRefine((arr, ctx) => {
    const seen = new Set<string>();
    arr.forEach((v, i) => {
      const key = JSON.stringify(v);
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i], message: `${JSON.stringify(v)} is duplicated` });
      seen.add(key);
    });
  });

/** An optional field: absent or null means unset, stored and returned as null. */
export const opt = <T extends z.ZodType>(s: T) => s.nullable().default(null);

const NAME_ASCII = /^[A-Za-z0-9.\-_~]*$/;
/** Kong's `utf8_name`: ASCII restricted to alphanumerics and `.-_~`, any non-ASCII allowed. */
export const utf8Name = () =>
  z.string().min(1, 'length must be at least 1').superRefine((v, ctx) => {
    if (v.length > MAX_NAME_LENGTH) { ctx.addIssue({ code: 'custom', message: `length must be at most ${MAX_NAME_LENGTH}` }); return; }
    const ascii = v.replace(/[^\x00-\x7f]/g, '');
    if (!NAME_ASCII.test(ascii) || /[\u0080-\u009f]/.test(v)) {
      ctx.addIssue({ code: 'custom', message: `invalid value '${v}': the only accepted ascii characters are alphanumerics or ., -, _, and ~` });
    }
  });

const TAG_ASCII = /^[\x21-\x7e]*$/;
/** Limits on tags: Kong has none, but each tag is copied into every snapshot (probe 4.4). */
export const MAX_TAG_LENGTH = 128;
export const MAX_TAGS = 64;
/** Why `v` is not a valid tag (Kong's wording), or null. Also used for `?tags=` filters. */
export function tagError(v: string): string | null {
  if (v.length === 0) return 'length must be at least 1';
  if (v.length > MAX_TAG_LENGTH) return `length must be at most ${MAX_TAG_LENGTH}`;
  const ascii = v.replace(/[^\x00-\x7f]/g, '');
  if (!TAG_ASCII.test(ascii) || v.includes(',') || v.includes('/') || /[\u0080-\u009f]/.test(v)) {
    return `invalid tag '${v}': expected printable ascii (except \`,\` and \`/\`) or valid utf-8 sequences`;
  }
  return null;
}
export const tags = () =>
  opt(set(z.string().superRefine((v, ctx) => {
    const err = tagError(v);
    if (err) ctx.addIssue({ code: 'custom', message: err });
  })).max(MAX_TAGS, `length must be at most ${MAX_TAGS}`));

const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
export function isHostOrIp(v: string): boolean {
  if (IPV4.test(v)) return true;
  if (v.startsWith('[') && v.endsWith(']')) return v.slice(1, -1).includes(':');
  if (v.includes(':')) return /^[0-9a-fA-F:.]+$/.test(v);
  return HOSTNAME.test(v);
}
/** A host (name or IP) without a port, as Kong's `host` type. */
export const host = () =>
  z.string().superRefine((v, ctx) => {
    if (v.length > MAX_NAME_LENGTH) { ctx.addIssue({ code: 'custom', message: `length must be at most ${MAX_NAME_LENGTH}` }); return; }
    if (!isHostOrIp(v)) ctx.addIssue({ code: 'custom', message: `invalid value: ${v}` });
  });

/** A timestamp in whole seconds, as Kong's `created_at`/`updated_at`. */
export const timestamp = () => z.int().nonnegative();
export const uuid = () => z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'expected a valid UUID');
/** A foreign key as Kong writes it: `{ "id": "<uuid>" }` or null. */
export const foreign = () => opt(z.strictObject({ id: uuid() }));

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
