// JSON Schema → compiled validator, once per distinct schema: on the CP when a config is written
// (a bad schema is refused with the JSON pointer of its problem) and on the DP when a snapshot is
// applied (handler init), never per request. Compiled validators are cached by draft, options and
// schema text, so the routes and snapshot versions that share a schema share one function
// (Kong keeps 1,000 compiled validators keyed by the schema's hash; kong/db/schema/json.lua).
//
// Ajv treats a schema as code (it compiles it with `new Function`), so what it is given is bounded
// first: size and depth capped, `$data` never enabled (CVE-2025-69873), `$ref` local only (no
// loader: a remote reference is refused, never fetched), and `pattern`/`patternProperties` run on
// RE2 (shared/src/regex), so no schema can make a request backtrack.
import { Ajv, type AnySchema, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft04 from 'ajv-draft-04';
import addFormatsModule from 'ajv-formats';
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { SafeRegex } from '../../regex/index.ts';

export const DRAFTS = ['draft4', 'draft7', 'draft2019-09', 'draft2020-12'] as const;
export type Draft = (typeof DRAFTS)[number];

/** Most characters of one schema (edge-design §4c). */
export const MAX_SCHEMA_CHARS = 256 * 1024;
/** Deepest nesting of objects and arrays in one schema. */
export const MAX_SCHEMA_DEPTH = 64;
/** Compiled validators kept (Kong's LRU size), and most schema characters they may hold together. */
const CACHE_ENTRIES = 1000;
const CACHE_SCHEMA_CHARS = 32 * 1024 * 1024;

// ajv-formats is CommonJS with a default export; under ESM interop it may arrive wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;
const Draft04 = ((AjvDraft04 as unknown as { default?: typeof AjvDraft04 }).default ?? AjvDraft04) as unknown as typeof Ajv;

/** RE2 for `pattern` and `patternProperties`: linear time, and a pattern RE2 refuses is a schema error. */
const re2: RegExpEngine = Object.assign((pattern: string): { test(s: string): boolean; toString(): string } => {
  let re: SafeRegex;
  try { re = new SafeRegex(pattern); } catch (err) { throw new PatternError(pattern, (err as Error).message); }
  // Ajv keys compiled patterns by toString(): one entry per pattern.
  return { test: (s) => re.test(s), toString: () => pattern };
}, { code: 're2' });

class PatternError extends Error {
  constructor(readonly pattern: string, reason: string) { super(`pattern ${JSON.stringify(pattern)} is not supported (${reason}); patterns run on RE2: no backreferences or lookaround`); }
}

export interface CompileOptions {
  draft: Draft;
  /** Every error, for verbose answers; otherwise the first (faster on invalid input). */
  allErrors: boolean;
  /** Coerce strings to the schema's types (parameters arrive as text). */
  coerce: boolean;
  /**
   * Check the schema against its draft's meta-schema first, for an error with a pointer: the CP,
   * at write. A DP applies schemas the CP checked, and skips building the meta-schema's own
   * validator (about 100 ms per draft and process, measured in test/bench/validator.ts); strict
   * mode and the guards above still run.
   */
  metaSchema: boolean;
}

/**
 * A new Ajv for one schema: it keeps nothing between schemas (no `$id` registry to collide or
 * grow), and costs about as much as a compile (test/bench/validator.ts).
 */
function newAjv(o: Omit<CompileOptions, 'metaSchema'>, validateSchema: boolean): Ajv {
  const opts: Options = {
    allErrors: o.allErrors,
    coerceTypes: o.coerce ? 'array' : false,
    validateSchema,
    $data: false,
    // Unknown keywords and formats are refused (a typo such as `minLenght` would otherwise
    // validate nothing); type-keyword pairing and tuples are left to the author.
    strict: true, strictTypes: false, strictTuples: false, strictRequired: false,
    keywords: ['example'],
    code: { regExp: re2 },
    messages: true,
  };
  const Ctor = o.draft === 'draft4' ? Draft04 : o.draft === 'draft7' ? Ajv : o.draft === 'draft2019-09' ? Ajv2019 : Ajv2020;
  return addFormats(new Ctor(opts));
}

/** One Ajv per draft that only checks schemas against the meta-schema (its validator is built once). */
const metaCheckers = new Map<Draft, Ajv>();
function metaChecker(draft: Draft): Ajv {
  let ajv = metaCheckers.get(draft);
  if (ajv === undefined) metaCheckers.set(draft, ajv = newAjv({ draft, allErrors: false, coerce: false }, true));
  return ajv;
}

/** A schema that cannot be used, with the JSON pointer (RFC 6901) of its problem. */
export class SchemaError extends Error {
  constructor(readonly pointer: string, readonly reason: string) { super(`invalid JSON Schema at '${pointer || '/'}': ${reason}`); }
}

// Keyed by a hash of the text (a 256 KiB schema is not kept twice); sized by the schemas' text, so
// 1,000 large schemas cannot pin gigabytes. Validators a running config uses stay referenced by it.
const cache = new LRUCache<string, ValidateFunction>({ max: CACHE_ENTRIES, maxSize: CACHE_SCHEMA_CHARS });

/**
 * The compiled validator of a schema given as JSON text (Kong's `body_schema` is a string), from
 * the cache when the same text was compiled with the same options. Throws SchemaError.
 */
export function compileSchema(text: string, o: CompileOptions): ValidateFunction {
  const key = `${o.draft}:${o.allErrors ? 1 : 0}${o.coerce ? 1 : 0}${o.metaSchema ? 1 : 0}:${createHash('sha256').update(text).digest('base64')}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const validate = compileUncached(parseSchema(text), o);
  cache.set(key, validate, { size: Math.max(1, text.length) });
  return validate;
}

/** The schema's JSON, checked for size, depth and the keywords never allowed. Throws SchemaError. */
export function parseSchema(text: string): AnySchema {
  if (text.length > MAX_SCHEMA_CHARS) throw new SchemaError('', `the schema is ${text.length} characters; at most ${MAX_SCHEMA_CHARS} are allowed`);
  let schema: unknown;
  try { schema = JSON.parse(text); } catch (err) { throw new SchemaError('', `not valid JSON (${(err as Error).message})`); }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    if (typeof schema !== 'boolean') throw new SchemaError('', 'a schema is a JSON object (or true/false)');
  }
  const tooDeep = findPointer(schema, (_v, depth) => depth > MAX_SCHEMA_DEPTH);
  if (tooDeep !== null) throw new SchemaError(tooDeep, `nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
  const data = findPointer(schema, (_v, _d, key) => key === '$data');
  if (data !== null) throw new SchemaError(data, '$data references are not supported');
  const remote = findPointer(schema, (v, _d, key) => (key === '$ref' || key === '$dynamicRef' || key === '$recursiveRef') && typeof v === 'string' && !v.startsWith('#'));
  if (remote !== null) throw new SchemaError(remote, 'only local references (starting with #) are supported; remote schemas are never fetched');
  return schema as AnySchema;
}

function compileUncached(schema: AnySchema, o: CompileOptions): ValidateFunction {
  if (o.metaSchema) {
    const checker = metaChecker(o.draft);
    if (!checker.validateSchema(schema)) {
      const e = checker.errors![0];
      throw new SchemaError(e.instancePath, e.message ?? 'does not match the meta-schema');
    }
  }
  try {
    return newAjv(o, false).compile(schema);
  } catch (err) {
    throw compileError(schema, err as Error & { missingRef?: string });
  }
}

const UNKNOWN_KEYWORD = /unknown keyword: "([^"]*)"/;
const UNKNOWN_FORMAT = /unknown format "([^"]*)"/;

/** Ajv's compile-time errors carry no pointer: find where the schema says what it complains about. */
function compileError(schema: unknown, err: Error & { missingRef?: string }): SchemaError {
  let at: string | null = null;
  if (err instanceof PatternError) at = findPointer(schema, (v, _d, key) => (key === 'pattern' && v === err.pattern) || key === err.pattern);
  else if (err.missingRef !== undefined) at = findPointer(schema, (v, _d, key) => key === '$ref' && typeof v === 'string' && err.missingRef!.endsWith(v));
  else {
    const keyword = UNKNOWN_KEYWORD.exec(err.message)?.[1];
    const format = UNKNOWN_FORMAT.exec(err.message)?.[1];
    if (keyword !== undefined) at = findPointer(schema, (_v, _d, key) => key === keyword);
    else if (format !== undefined) at = findPointer(schema, (v, _d, key) => key === 'format' && v === format);
  }
  return new SchemaError(at ?? '', err.message.replace(/^strict mode: /, ''));
}

const escapeToken = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * The JSON pointer of the first value (depth first) for which `test` holds, or null. `key` is the
 * value's property name in its parent object (undefined for array items and the root). Stops
 * descending past MAX_SCHEMA_DEPTH + 1, so a hostile document costs no more than the cap.
 */
export function findPointer(doc: unknown, test: (value: unknown, depth: number, key: string | undefined) => boolean): string | null {
  const walk = (v: unknown, depth: number, key: string | undefined, at: string): string | null => {
    if (test(v, depth, key)) return at;
    if (depth > MAX_SCHEMA_DEPTH || typeof v !== 'object' || v === null) return null;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) { const r = walk(v[i], depth + 1, undefined, `${at}/${i}`); if (r !== null) return r; }
      return null;
    }
    for (const [k, child] of Object.entries(v)) { const r = walk(child, depth + 1, k, `${at}/${escapeToken(k)}`); if (r !== null) return r; }
    return null;
  };
  return walk(doc, 0, undefined, '');
}

/** One validation error as answered with `verbose_response` (edge-design §4c). */
export interface ValidationError { in: 'body' | 'query' | 'header' | 'path'; name?: string; pointer: string; keyword: string; message: string }

/** Most errors listed in one verbose answer. */
export const MAX_LISTED_ERRORS = 10;

export function describeErrors(errors: ErrorObject[] | null | undefined, where: ValidationError['in'], name?: string): ValidationError[] {
  return (errors ?? []).slice(0, MAX_LISTED_ERRORS).map((e) => ({
    in: where, ...(name === undefined ? {} : { name }),
    pointer: e.instancePath, keyword: e.keyword, message: e.message ?? e.keyword,
  }));
}
