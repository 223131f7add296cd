// Field builders that give zod schemas Kong's validation messages (reference/kong-compat.md §1.7).
// Every entity and plugin schema is written with these, so the admin API's `fields` errors read
// exactly as Kong's do and the schema stays the single source of truth for types and defaults.
import { z } from 'zod';

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
    return undefined;
  },
});

export const int = (min: number, max: number) =>
  z.int({ error: (i) => (i.input == null ? REQUIRED : 'expected an integer') })
    .min(min, `value should be between ${min} and ${max}`)
    .max(max, `value should be between ${min} and ${max}`);

export const bool = () => z.boolean();
export const str = () => z.string().min(1, 'length must be at least 1');
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
    const ascii = v.replace(/[^\x00-\x7f]/g, '');
    if (!NAME_ASCII.test(ascii)) {
      ctx.addIssue({ code: 'custom', message: `invalid value '${v}': the only accepted ascii characters are alphanumerics or ., -, _, and ~` });
    }
  });

const TAG_ASCII = /^[\x21-\x7e]*$/;
export const tags = () =>
  opt(set(z.string().min(1, 'length must be at least 1').superRefine((v, ctx) => {
    const ascii = v.replace(/[^\x00-\x7f]/g, '');
    if (!TAG_ASCII.test(ascii) || v.includes(',') || v.includes('/')) {
      ctx.addIssue({ code: 'custom', message: `invalid tag '${v}': expected printable ascii (except \`,\` and \`/\`) or valid utf-8 sequences` });
    }
  })));

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
    if (!isHostOrIp(v)) ctx.addIssue({ code: 'custom', message: `invalid value: ${v}` });
  });

/** A timestamp in whole seconds, as Kong's `created_at`/`updated_at`. */
export const timestamp = () => z.int().nonnegative();
export const uuid = () => z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'expected a valid UUID');
/** A foreign key as Kong writes it: `{ "id": "<uuid>" }` or null. */
export const foreign = () => opt(z.strictObject({ id: uuid() }));

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
