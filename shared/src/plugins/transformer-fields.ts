// The list syntax request- and response-transformer share (Kong's schemas): a list of header or
// query names, or of `name:value` pairs split at the first colon (`^([^:]+):*(.-)$`: further colons
// right after it are dropped). Validated at write time with Kong's messages, plus what Kong leaves to
// nginx: a value that would split or break a header (CR, LF, NUL, beyond Latin-1) is refused here.
import { z } from 'zod';
import { MAX_TEXT_LENGTH, text } from '../entities/fields.ts';
import { headerValue } from './http-fields.ts';
import { parseDotted } from './json-paths.ts';
import { DEFAULT_BODY_CAP_BYTES } from './types.ts';

const KONG_HEADER_NAME = /^[A-Za-z0-9_-]+$/;
const PAIR = /^([^:]+):*([\s\S]*)$/;

export interface Pair { name: string; value: string }

/** Splits a `name:value` entry as Kong does; the caller has validated it. */
export function splitPair(entry: string): Pair {
  const m = PAIR.exec(entry)!;
  return { name: m[1], value: m[2] };
}

/** Kong's validate_headers message. */
const notHeader = (name: string) => `'${name}' is not a valid header`;
const headerValueField = headerValue();
const textField = text();

/** Extra checks on a pair's value (a template's grammar), returning an error message or null. */
export type ValueCheck = (value: string) => string | null;

/** A list of header names (`remove.headers`); a `name:…` entry is read as its name, as Kong. */
export const headerNames = () => z.array(text().superRefine((v, ctx) => {
  const name = PAIR.exec(v)?.[1];
  if (name === undefined || !KONG_HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', message: notHeader(name ?? v) });
})).default([]);

/** A list of query argument names (`remove.querystring`). */
export const queryNames = () => z.array(text().min(1, 'length must be at least 1')).default([]);

/**
 * A list of `name:value` pairs. `kind` says what the name and value must be: header name and header
 * value, header name and header name (rename), or query name and query value.
 */
export const pairs = (kind: 'header' | 'rename-header' | 'query', check: ValueCheck | null = null) =>
  // One message per entry: the first problem found (a plain string, then checked here in order).
  z.array(z.string().max(MAX_TEXT_LENGTH, `length must be at most ${MAX_TEXT_LENGTH}`).superRefine((v, ctx) => {
    if (kind !== 'header') {
      const r = textField.safeParse(v);
      if (!r.success) { ctx.addIssue({ code: 'custom', message: r.error.issues[0].message }); return; }
    }
    const m = PAIR.exec(v);
    if (m === null || !v.includes(':')) { ctx.addIssue({ code: 'custom', message: `invalid value: ${v}` }); return; }
    const name = m[1], value = m[2];
    if (kind !== 'query' && !KONG_HEADER_NAME.test(name)) { ctx.addIssue({ code: 'custom', message: notHeader(name) }); return; }
    if (kind === 'rename-header' && !KONG_HEADER_NAME.test(value)) { ctx.addIssue({ code: 'custom', message: notHeader(value) }); return; }
    if (kind === 'header') {
      const r = headerValueField.safeParse(value);
      if (!r.success) { ctx.addIssue({ code: 'custom', message: r.error.issues[0].message }); return; }
    }
    const problem = check?.(value) ?? null;
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  })).default([]);

// ── Body lists (the body phase) ───────────────────────────────────────────────────────────────

/** A list of body field names (`remove.body`, `remove.json`, `allow.*`). */
export const bodyNames = () => z.array(text().min(1, 'length must be at least 1').superRefine((v, ctx) => {
  const p = parseDotted(v, true);
  if (typeof p === 'string') ctx.addIssue({ code: 'custom', message: p });
})).default([]);

/** A list of body `name:value` pairs (a JSON key, a form field). */
export const bodyPairs = (check: ValueCheck | null = null) => z.array(text().superRefine((v, ctx) => {
  if (!v.includes(':') || v.startsWith(':')) { ctx.addIssue({ code: 'custom', message: `invalid value: ${v}` }); return; }
  const { name, value } = splitPair(v);
  const p = parseDotted(name, true);
  if (typeof p === 'string') { ctx.addIssue({ code: 'custom', message: p }); return; }
  const problem = check?.(value) ?? null;
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
})).default([]);

/** Kong's json_types: entry i types value i of the same section's json (or body) list. */
export const valueType = () => z.enum(['boolean', 'number', 'string']);
export const jsonTypes = () => z.array(valueType()).default([])
  .describe('Types of the values of the same section\'s JSON list, by position (boolean, number, string)');

/** The body phase's per-plugin cap. */
export const maxBodyBytes = () => z.number().int().min(1).max(64 * DEFAULT_BODY_CAP_BYTES).default(DEFAULT_BODY_CAP_BYTES)
  .describe('Most body bytes buffered to transform; a larger body streams through untouched (X-Portico-Body-Skipped: too-large)');

/**
 * With `dots_in_keys: false` every body key is a nested path (`a.b`, `a[*].b`): checked here, with
 * the field of each entry, since the path grammar depends on that sibling field.
 */
export const checkBodyPaths = (sections: string[], list: string) => (cfg: Record<string, any>, ctx: z.RefinementCtx) => {
  if (cfg.dots_in_keys !== false) return;
  for (const section of sections) {
    (cfg[section]?.[list] as string[] | undefined ?? []).forEach((entry, i) => {
      const names = section === 'rename' ? [splitPair(entry).name, splitPair(entry).value] : [section === 'remove' || section === 'allow' ? entry : splitPair(entry).name];
      for (const n of names) {
        const p = parseDotted(n, false);
        if (typeof p === 'string') ctx.addIssue({ code: 'custom', path: [section, list, i], message: p });
      }
    });
  }
};
