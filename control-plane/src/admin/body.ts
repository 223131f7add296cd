// Admin request bodies as Kong reads them (reference/kong-compat.md §1.4): JSON as is; form and
// multipart with dotted/bracketed keys nested and values coerced against the entity's zod schema.
import type { Context } from 'hono';
import type { z } from 'zod';
import { AdminError } from '@portico/shared';

const MAX_ARGS = 1000;

type Json = Record<string, unknown>;

/** Split `config.minute`, `paths[]`, `paths[1]`, `headers[x-foo][]` into path segments. */
function splitKey(key: string): (string | number | '[]')[] {
  const k = key.replace(/%5B/gi, '[').replace(/%5D/gi, ']');
  const out: (string | number | '[]')[] = [];
  const re = /([^.[\]]+)|\[([^\]]*)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(k))) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] === '') out.push('[]');
    else if (/^\d+$/.test(m[2])) out.push(Number(m[2]));
    else out.push(m[2]);
  }
  return out;
}

/** Build a nested object from form pairs. Indexed arrays (`a[2]`, `a[1]`) are ordered by index. */
export function nestFormPairs(pairs: [string, unknown][]): Json {
  const root: Json = {};
  for (const [rawKey, value] of pairs) {
    const parts = splitKey(rawKey);
    if (!parts.length) continue;
    let node: any = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const last = i === parts.length - 1;
      const next = parts[i + 1];
      if (part === '[]') {
        if (!Array.isArray(node.__list)) node.__list = [];
        if (last) { node.__list.push(value); break; }
        const child = {};
        node.__list.push(child);
        node = child;
        continue;
      }
      if (last) {
        const existing = node[part];
        if (existing === undefined) node[part] = value;
        else if (Array.isArray(existing)) existing.push(value);
        else if (existing && typeof existing === 'object' && '__list' in existing) existing.__list.push(value);
        else node[part] = [existing, value];
        break;
      }
      if (node[part] === undefined || typeof node[part] !== 'object' || node[part] === null) {
        node[part] = next === '[]' ? { __list: [] } : typeof next === 'number' ? { __indexed: true } : {};
      }
      node = node[part];
    }
  }
  return finalize(root) as Json;
}

function finalize(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(finalize);
  if (!node || typeof node !== 'object') return node;
  const obj = node as Record<string, unknown>;
  if ('__list' in obj) return (obj.__list as unknown[]).map(finalize);
  if ('__indexed' in obj) {
    return Object.keys(obj).filter((k) => k !== '__indexed').map(Number).sort((a, b) => a - b).map((k) => finalize(obj[k]));
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = finalize(v);
  return out;
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
      const out: Json = {};
      for (const [k, v] of Object.entries(value as Json)) out[k] = coerce(shape[k], v);
      return out;
    }
    case 'record': {
      if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
      const out: Json = {};
      for (const [k, v] of Object.entries(value as Json)) out[k] = coerce(s._zod.def.valueType, v);
      return out;
    }
    default:
      return value;
  }
}

/**
 * Read a write request's body as Kong does. `schemaFor` picks the schema to coerce form values
 * against once the raw object is known (a plugin's depends on its `name`).
 */
export async function readBody(c: Context, schemaFor: (raw: Json) => z.ZodType | undefined | Promise<z.ZodType | undefined>): Promise<Json> {
  const ctypes = c.req.raw.headers.get('content-type');
  const text = await c.req.text();
  if (ctypes && ctypes.includes(',') && /application|multipart/.test(ctypes.split(',')[1] ?? '')) {
    throw AdminError.message(400, 'Multiple Content-Type headers');
  }
  const ctype = (ctypes ?? '').split(';')[0].trim().toLowerCase();
  if (!ctype) {
    if (text.trim() === '') return {};
    // curl without -H sends form data with its content type; a bare body is read as JSON.
    return parseJson(text);
  }
  if (ctype === 'application/json' || ctype.endsWith('+json')) return parseJson(text);
  if (ctype === 'application/x-www-form-urlencoded') {
    const params = new URLSearchParams(text);
    const pairs = [...params.entries()];
    if (pairs.length > MAX_ARGS) throw AdminError.message(400, 'Too many arguments');
    const raw = nestFormPairs(pairs);
    return coerce(await schemaFor(raw), raw) as Json;
  }
  if (ctype === 'multipart/form-data') {
    let form: FormData;
    try {
      form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': ctypes! }, body: text }).formData();
    } catch {
      throw AdminError.message(400, 'Cannot parse multipart body');
    }
    const pairs: [string, unknown][] = [];
    form.forEach((v, k) => pairs.push([k, typeof v === 'string' ? v : '']));
    if (pairs.length > MAX_ARGS) throw AdminError.message(400, 'Too many arguments');
    const raw = nestFormPairs(pairs);
    return coerce(await schemaFor(raw), raw) as Json;
  }
  throw new AdminError(415, { message: 'Unsupported Media Type' });
}

function parseJson(text: string): Json {
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Json;
  } catch {
    throw AdminError.message(400, 'Cannot parse JSON body');
  }
}
