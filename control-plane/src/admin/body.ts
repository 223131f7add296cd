// Admin request bodies as Kong reads them (reference/kong-compat.md §1.4): JSON as is; form and
// multipart with dotted/bracketed keys nested and values coerced against the entity's zod schema.
//
// Everything here is client input from a port any web page can post a form to, so:
// - a body is read up to MAX_BODY_BYTES and no further (Kong's client_max_body_size 10m → 413);
// - objects are built with a null prototype, and the keys `__proto__`, `constructor` and
//   `prototype` are refused anywhere (probe 4.1: `__proto__[apikey]=k` wrote onto
//   Object.prototype and let every request through key-auth);
// - nesting is bounded (probe 4.5, 4.6: 5,000-deep keys overflowed the stack).
import type { Context } from 'hono';
import type { z } from 'zod';
import { AdminError, RESERVED_KEYS, reservedKeyMessage, schemaViolation, type Violation } from '@portico/shared';

/** Kong's admin `client_max_body_size`. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Kong's limit on form arguments. */
const MAX_ARGS = 1000;
/** nginx's lingering_time: how long the rest of an over-long body is read and dropped. */
const LINGER_MS = 30_000;
/** Deepest form key (`healthchecks.active.healthy.http_statuses[]` has 5 segments). */
export const MAX_FORM_KEY_DEPTH = 16;
/** Deepest JSON nesting (the deepest entity, an upstream's healthchecks, needs 5). */
export const MAX_JSON_DEPTH = 32;

type Json = Record<string, unknown>;

const nullObject = (): Json => Object.create(null) as Json;

const payloadTooLarge = () => new AdminError(413, { message: 'Payload too large' });

/**
 * The request body's bytes, refused with 413 once it is known to exceed `MAX_BODY_BYTES`: from
 * Content-Length before reading anything (Node discards the unread body after the answer, so the
 * connection stays usable), else by counting a streamed body, whose rest is read and dropped so
 * that the client, still sending, gets the answer rather than a reset.
 */
export async function readLimited(c: Context): Promise<Uint8Array> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw payloadTooLarge();
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  // Past the limit the rest is dropped for at most LINGER_MS, then the client is answered anyway.
  let lingerUntil = Infinity;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total <= MAX_BODY_BYTES) { chunks.push(value); continue; }
    chunks.length = 0;
    if (lingerUntil === Infinity) lingerUntil = Date.now() + LINGER_MS;
    else if (Date.now() > lingerUntil) { void reader.cancel(); break; }
  }
  if (total > MAX_BODY_BYTES) throw payloadTooLarge();
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const ch of chunks) { out.set(ch, at); at += ch.byteLength; }
  return out;
}

type Segment = string | number | '[]';

/** Split `config.minute`, `paths[]`, `paths[1]`, `headers[x-foo][]` into path segments. */
function splitKey(key: string): Segment[] {
  const k = key.replace(/%5B/gi, '[').replace(/%5D/gi, ']');
  const out: Segment[] = [];
  const re = /([^.[\]]+)|\[([^\]]*)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(k))) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] === '') out.push('[]');
    else if (/^\d{1,9}$/.test(m[2])) out.push(Number(m[2]));
    else out.push(m[2]);
  }
  return out;
}

// Form containers while pairs are nested: `a[]` appends, `a[2]` orders by index, `a.b` names.
class List { readonly items: unknown[] = []; }
class Indexed { readonly byIndex = new Map<number, unknown>(); }
type Container = Json | List | Indexed;

const isContainer = (v: unknown): v is Container => v instanceof List || v instanceof Indexed || (typeof v === 'object' && v !== null && !Array.isArray(v));
const containerFor = (next: Segment): Container => (next === '[]' ? new List() : typeof next === 'number' ? new Indexed() : nullObject());

/** Repeated keys collect into an array, as Kong reads `paths=/a&paths=/b`. */
function append(existing: unknown, value: unknown): unknown {
  if (existing === undefined) return value;
  if (existing instanceof List) { existing.items.push(value); return existing; }
  if (Array.isArray(existing)) { existing.push(value); return existing; }
  return [existing, value];
}

/** Why a form key cannot be used, or null: too deep, a reserved segment. */
function formKeyProblem(parts: Segment[]): Violation | null {
  const names = parts.filter((p) => p !== '[]').map(String);
  if (parts.length > MAX_FORM_KEY_DEPTH) return { path: names.slice(0, 1), message: `key nested deeper than ${MAX_FORM_KEY_DEPTH} levels` };
  const bad = names.findIndex((p) => RESERVED_KEYS.has(p));
  if (bad >= 0) return { path: names.slice(0, bad + 1), message: reservedKeyMessage(names[bad]) };
  return null;
}

/**
 * Build a nested, null-prototype object from form pairs. Indexed arrays (`a[2]`, `a[1]`) are ordered
 * by index. Throws Kong's schema violation (400) for a reserved or too deeply nested key.
 */
export function nestFormPairs(pairs: [string, unknown][]): Json {
  const root = nullObject();
  const violations: Violation[] = [];
  for (const [rawKey, value] of pairs) {
    const parts = splitKey(rawKey);
    if (!parts.length) continue;
    const problem = formKeyProblem(parts);
    if (problem) { violations.push(problem); continue; }
    let node: Container = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const last = i === parts.length - 1;
      if (node instanceof List) {
        if (part !== '[]') { violations.push({ path: [String(parts[0])], message: 'cannot mix list and named keys' }); break; }
        if (last) { node.items.push(value); break; }
        const child = containerFor(parts[i + 1]);
        node.items.push(child);
        node = child;
        continue;
      }
      if (part === '[]') {
        // `a[]` on a named or indexed container: only reached when the container was built for a
        // different shape by an earlier key.
        violations.push({ path: [String(parts[0])], message: 'cannot mix list and named keys' });
        break;
      }
      if (node instanceof Indexed) {
        if (typeof part !== 'number') { violations.push({ path: [String(parts[0])], message: 'cannot mix indexed and named keys' }); break; }
        const existing: unknown = node.byIndex.get(part);
        if (last) { node.byIndex.set(part, append(existing, value)); break; }
        const child: Container = isContainer(existing) ? existing : containerFor(parts[i + 1]);
        node.byIndex.set(part, child);
        node = child;
        continue;
      }
      const name = String(part);
      const existing: unknown = node[name];
      if (last) { node[name] = append(existing, value); break; }
      const child: Container = isContainer(existing) ? existing : containerFor(parts[i + 1]);
      node[name] = child;
      node = child;
    }
  }
  if (violations.length) throw schemaViolation(violations);
  return finalize(root) as Json;
}

/** Containers to plain values; depth is bounded by MAX_FORM_KEY_DEPTH. */
function finalize(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(finalize);
  if (node instanceof List) return node.items.map(finalize);
  if (node instanceof Indexed) return [...node.byIndex.keys()].sort((a, b) => a - b).map((k) => finalize(node.byIndex.get(k)));
  if (!node || typeof node !== 'object') return node;
  const out = nullObject();
  for (const k of Object.keys(node)) out[k] = finalize((node as Json)[k]);
  return out;
}

/**
 * Check a parsed JSON value without recursion (its depth is the client's): nesting at most
 * MAX_JSON_DEPTH, no reserved key at any depth. Returns the violations found.
 */
export function jsonProblems(value: unknown): Violation[] {
  const violations: Violation[] = [];
  const stack: { v: unknown; depth: number; path: (string | number)[] }[] = [{ v: value, depth: 0, path: [] }];
  while (stack.length) {
    const { v, depth, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) {
      violations.push({ path: path.slice(0, 1), message: `value nested deeper than ${MAX_JSON_DEPTH} levels` });
      return violations;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (v[i] !== null && typeof v[i] === 'object') stack.push({ v: v[i], depth: depth + 1, path: [...path, i] });
      continue;
    }
    for (const k of Object.keys(v)) {
      if (RESERVED_KEYS.has(k)) { violations.push({ path: [...path, k], message: reservedKeyMessage(k) }); continue; }
      const child = (v as Json)[k];
      if (child !== null && typeof child === 'object') stack.push({ v: child, depth: depth + 1, path: [...path, k] });
    }
  }
  return violations;
}

/** A checked JSON value rebuilt with null-prototype objects (depth already bounded). */
function toNullProto(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(toNullProto);
  const out = nullObject();
  for (const k of Object.keys(v)) out[k] = toNullProto((v as Json)[k]);
  return out;
}

/** Parse a JSON body: an object, no reserved keys, bounded depth; null-prototype throughout. */
export function parseJson(text: string): Json {
  let v: unknown;
  try { v = JSON.parse(text); } catch { throw AdminError.message(400, 'Cannot parse JSON body'); }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw AdminError.message(400, 'Cannot parse JSON body');
  const problems = jsonProblems(v);
  if (problems.length) throw schemaViolation(problems);
  return toNullProto(v) as Json;
}

/** Peel wrappers (default, nullable, optional, pipe) off a zod schema. */
function core(schema: z.ZodType | undefined): any {
  let s: any = schema;
  while (s) {
    const t = s._zod?.def?.type;
    if (t === 'default' || t === 'nullable' || t === 'optional' || t === 'prefault' || t === 'readonly' || t === 'catch') s = s._zod.def.innerType;
    else if (t === 'pipe') s = s._zod.def.in;
    else break;
  }
  return s;
}

/** Coerce form strings against the schema: numbers, booleans, "" → null, scalars → one-element arrays. */
export function coerce(schema: z.ZodType | undefined, value: unknown): unknown {
  const s = core(schema);
  const type: string | undefined = s?._zod?.def?.type;
  if (value === '') return null;
  switch (type) {
    case 'number': {
      if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
      return value;
    }
    case 'boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    case 'union': {
      const opts: any[] = s._zod.def.options;
      if (typeof value === 'string' && opts.every((o) => o._zod.def.type === 'literal' && typeof o._zod.def.values[0] === 'number')) {
        return Number.isNaN(Number(value)) ? value : Number(value);
      }
      return value;
    }
    case 'array': {
      const list = Array.isArray(value) ? value : [value];
      return list.map((v) => coerce(s._zod.def.element, v));
    }
    case 'object': {
      if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
      const shape = s._zod.def.shape as Record<string, z.ZodType>;
      const out = nullObject();
      for (const k of Object.keys(value)) out[k] = coerce(Object.hasOwn(shape, k) ? shape[k] : undefined, (value as Json)[k]);
      return out;
    }
    case 'record': {
      if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
      const out = nullObject();
      for (const k of Object.keys(value)) out[k] = coerce(s._zod.def.valueType, (value as Json)[k]);
      return out;
    }
    default:
      return value;
  }
}

export type SchemaFor = (raw: Json) => z.ZodType | undefined | Promise<z.ZodType | undefined>;

function formPairs(pairs: [string, unknown][]): Json {
  if (pairs.length > MAX_ARGS) throw AdminError.message(400, 'Too many arguments');
  return nestFormPairs(pairs);
}

/**
 * Parse a write body of the given Content-Type header as Kong does. `schemaFor` picks the schema
 * to coerce form values against once the raw object is known (a plugin's depends on its `name`).
 */
export async function parseBody(ctypes: string | undefined, bytes: Uint8Array, schemaFor: SchemaFor): Promise<Json> {
  if (ctypes && ctypes.includes(',') && /application|multipart/.test(ctypes.split(',')[1] ?? '')) {
    throw AdminError.message(400, 'Multiple Content-Type headers');
  }
  const ctype = (ctypes ?? '').split(';')[0].trim().toLowerCase();
  const text = () => new TextDecoder().decode(bytes);
  if (!ctype) {
    const t = text();
    if (t.trim() === '') return nullObject();
    // curl without -H sends form data with its content type; a bare body is read as JSON.
    return parseJson(t);
  }
  if (ctype === 'application/json' || ctype.endsWith('+json')) return parseJson(text());
  if (ctype === 'application/x-www-form-urlencoded') {
    // Counted while iterating: a 10 MB `a&a&a…` body must not become millions of pairs first.
    const pairs: [string, unknown][] = [];
    for (const pair of new URLSearchParams(text())) {
      if (pairs.push(pair) > MAX_ARGS) throw AdminError.message(400, 'Too many arguments');
    }
    const raw = formPairs(pairs);
    return coerce(await schemaFor(raw), raw) as Json;
  }
  if (ctype === 'multipart/form-data') {
    let form: FormData;
    try {
      form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': ctypes! }, body: bytes as Uint8Array<ArrayBuffer> }).formData();
    } catch {
      throw AdminError.message(400, 'Cannot parse multipart body');
    }
    const pairs: [string, unknown][] = [];
    form.forEach((v, k) => pairs.push([k, typeof v === 'string' ? v : '']));
    const raw = formPairs(pairs);
    return coerce(await schemaFor(raw), raw) as Json;
  }
  throw new AdminError(415, { message: 'Unsupported Media Type' });
}

/** Read and parse a write request's body (see parseBody), at most MAX_BODY_BYTES of it. */
export async function readBody(c: Context, schemaFor: SchemaFor): Promise<Json> {
  return parseBody(c.req.raw.headers.get('content-type') ?? undefined, await readLimited(c), schemaFor);
}
