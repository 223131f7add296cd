// Wire form of a snapshot: JSON, gzip-compressed. 10,000 routes are several MB of JSON; gzip brings
// that to a few hundred KB, and the NATS object store chunks whatever remains.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { canonicalConfig, hashOfTexts, type CanonicalConfig } from './hash.ts';
import { configSchema, snapshotSchema, type Config, type Snapshot } from './schema.ts';

/** Largest decompressed snapshot accepted: 10,000 routes are a few MB; a gzip bomb stops here. */
export const MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024;

/**
 * Every entity is written as its canonical text (keys sorted at every level, hash.ts), so a DP can
 * take each entity's text as it lies in the document instead of canonicalizing it again
 * (decodeAgainst). `texts`: the config's canonical texts when the caller already has them.
 */
export function encodeSnapshot(snapshot: Snapshot, texts: CanonicalConfig['texts'] = canonicalConfig(snapshot.config).texts): Uint8Array {
  return writeSnapshot(snapshot, configText(snapshot.config, texts));
}

/**
 * A snapshot of `config` with its hash and bytes, from the entities' canonical texts. When every
 * list is in id order (the CP reads them so) the config's text is exactly what the hash is computed
 * over: one string serves both.
 */
export function sealSnapshot(head: { version: number; built_at: number }, config: Config, texts: CanonicalConfig['texts']): { snapshot: Snapshot; bytes: Uint8Array } {
  const text = configText(config, texts);
  const lists = Object.values(config) as { id: string }[][];
  const byId = lists.every((list) => list.every((e, i) => i === 0 || list[i - 1].id < e.id));
  const hash = byId ? createHash('sha256').update(`{${text}}`).digest('hex') : hashOfTexts(config, texts);
  const snapshot: Snapshot = { version: head.version, hash, built_at: head.built_at, config };
  return { snapshot, bytes: writeSnapshot(snapshot, text) };
}

/** The config object's members, lists by name, each entity as its canonical text (`{` and `}` left out). */
function configText(config: Config, texts: CanonicalConfig['texts']): string {
  return Object.keys(config).sort().map((k) => `${JSON.stringify(k)}:[${texts[k].join(',')}]`).join(',');
}

/**
 * The document, gzip-compressed. Level 3: at 10,000 routes (4.9 MB of JSON) 11 ms against 22 at
 * the default 6, for 8% more bytes (424 KB) and about a millisecond more to decompress.
 */
function writeSnapshot(snapshot: Snapshot, configText: string): Uint8Array {
  const json = `{"built_at":${JSON.stringify(snapshot.built_at)},"config":{${configText}},"hash":${JSON.stringify(snapshot.hash)},"version":${JSON.stringify(snapshot.version)}}`;
  return gzipSync(json, { level: 3 });
}

export class SnapshotError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotError';
  }
}

/**
 * Decode and validate a snapshot: schema, and the hash recomputed over its content. Whatever the
 * bytes, throws only SnapshotError (a deep document overflowing the stack included), which apply
 * turns into a reported rejection.
 */
export function decodeSnapshot(bytes: Uint8Array, maxBytes = MAX_SNAPSHOT_BYTES): Snapshot {
  return decodeCanonical(bytes, maxBytes).snapshot;
}

/** decodeSnapshot, also giving each entity's canonical text (what the hash was computed over). */
export function decodeCanonical(bytes: Uint8Array, maxBytes = MAX_SNAPSHOT_BYTES): { snapshot: Snapshot; texts: CanonicalConfig['texts'] } {
  let raw: unknown;
  try {
    raw = JSON.parse(gunzipSync(bytes, { maxOutputLength: maxBytes }).toString('utf8'));
  } catch (cause) {
    throw new SnapshotError('snapshot is not gzip-compressed JSON', { cause });
  }
  try {
    return validateCanonical(raw);
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`snapshot could not be validated: ${(err as Error).message}`, { cause: err });
  }
}

/** What decodeAgainst gives: the snapshot's entities list by list, held ones by index, fresh ones validated. */
export interface DeltaDecoded {
  version: number;
  hash: string;
  built_at: number;
  lists: Record<string, { keys: string[]; held: Int32Array | null; fresh: unknown[] }>;
}

const headSchema = snapshotSchema.omit({ config: true });
const LIST_NAMES = Object.keys(configSchema.shape).sort();

/**
 * A snapshot as encodeSnapshot lays it out: the head's fields and, list by list, where each
 * entity's text lies in the document's bytes (start, end) and its top-level id.
 */
interface Layout {
  version: number; hash: string; built_at: number;
  lists: { name: string; spans: number[]; ids: string[] }[];
  /** Where the config's lists start and end in the bytes (its `{` and `}` left out). */
  config: [start: number, end: number];
}

const QUOTE = 34, COMMA = 44, BACKSLASH = 92, OPEN_BRACE = 123, CLOSE_BRACE = 125, OPEN_BRACKET = 91, CLOSE_BRACKET = 93;
const ID_KEY = Buffer.from('"id":"');

/**
 * Reads the layout encodeSnapshot writes (`{"built_at":N,"config":{"name":[{…},…],…},"hash":"…",
 * "version":N}`, no whitespace) from the UTF-8 bytes, without parsing the entities: each one's
 * span is where its braces balance, and its top-level `id` is read on the way. (Bytes, not a
 * string: UTF-8 never puts a byte below 0x80 inside a multi-byte character, and a byte array
 * scans several times faster than a string's characters.) Null on anything else (another writer's
 * layout, bytes that are not JSON): the caller decodes in full, which names what is wrong. A span
 * accepted here is not yet known to be JSON; the hash check and JSON.parse of each new one settle that.
 */
function scanLayout(b: Buffer): Layout | null {
  let at = 0;
  const expect = (lit: string): boolean => {
    for (let i = 0; i < lit.length; i++) if (b[at + i] !== lit.charCodeAt(i)) return false;
    at += lit.length;
    return true;
  };
  const number = (): number | null => {
    const from = at;
    while (at < b.length && ((b[at] >= 48 && b[at] <= 57) || b[at] === 45 || b[at] === 43 || b[at] === 46 || b[at] === 101 || b[at] === 69)) at++;
    return at > from ? Number(b.toString('latin1', from, at)) : null;
  };
  if (!expect('{"built_at":')) return null;
  const builtAt = number();
  if (builtAt === null || !expect(',"config":{')) return null;
  const configStart = at;
  const lists: Layout['lists'] = [];
  if (b[at] !== CLOSE_BRACE) {
    for (;;) {
      if (!expect('"')) return null;
      const close = b.indexOf('":[', at, 'latin1');
      if (close < 0 || close - at > 64) return null;
      const name = b.toString('latin1', at, close);
      at = close + 3;
      const spans: number[] = [];
      const ids: string[] = [];
      if (b[at] !== CLOSE_BRACKET) {
        for (;;) {
          const end = endOfObject(b, at, ids);
          if (end < 0 || ids.length !== spans.length / 2 + 1) return null;
          spans.push(at, end);
          at = end;
          if (b[at] === CLOSE_BRACKET) break;
          if (b[at++] !== COMMA) return null;
        }
      }
      at++; // ']'
      lists.push({ name, spans, ids });
      if (b[at] === CLOSE_BRACE) break;
      if (b[at++] !== COMMA) return null;
    }
  }
  const configEnd = at++; // '}' of config
  if (!expect(',"hash":"')) return null;
  const hashEnd = b.indexOf(QUOTE, at);
  if (hashEnd < 0) return null;
  const hash = b.toString('latin1', at, hashEnd);
  at = hashEnd + 1;
  if (!expect(',"version":')) return null;
  const version = number();
  if (version === null || !expect('}') || at !== b.length) return null;
  return { version, hash, built_at: builtAt, lists, config: [configStart, configEnd] };
}

/**
 * The end of the JSON object starting at `start` (its braces and brackets balanced outside
 * strings), or -1; pushes its top-level `"id"` string onto `ids` when it has one.
 */
function endOfObject(b: Buffer, start: number, ids: string[]): number {
  if (b[start] !== OPEN_BRACE) return -1;
  let depth = 0;
  for (let i = start; i < b.length; i++) {
    const c = b[i];
    if (c === QUOTE) {
      // A key at the top level of the entity (after its `{` or a `,`): the id is read here.
      if (depth === 1 && (b[i - 1] === OPEN_BRACE || b[i - 1] === COMMA) && b[i + 1] === 105 /* i */ && b[i + 2] === 100 /* d */ && b.compare(ID_KEY, 0, 6, i, i + 6) === 0) {
        const end = b.indexOf(QUOTE, i + 6);
        if (end < 0 || b[end - 1] === BACKSLASH) return -1; // an id with escapes: not a CP's uuid
        ids.push(b.toString('latin1', i + 6, end));
        i = end;
        continue;
      }
      for (i++; i < b.length; i++) {
        const d = b[i];
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * decodeCanonical against entities already held, for a DP's decoder: an entity whose text (its key,
 * `keyOf`) is one the requester holds was validated when it arrived and is neither parsed nor
 * validated again; only new ones are. Relies on the CP writing entities as canonical text
 * (encodeSnapshot): each entity's text is sliced from the document as it stands (scanLayout) and
 * the hash is checked over those texts. Null when that does not hold (another layout, or the hash
 * over those texts is not the snapshot's: a snapshot from an older CP): the caller then decodes in
 * full (decodeCanonical). Throws SnapshotError as decodeCanonical does.
 */
export function decodeAgainst(bytes: Uint8Array, held: Record<string, ReadonlyMap<string, number>>, keyOf: (text: Uint8Array) => string, maxBytes = MAX_SNAPSHOT_BYTES): DeltaDecoded | null {
  let json: Buffer;
  try {
    json = gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (cause) {
    throw new SnapshotError('snapshot is not gzip-compressed JSON', { cause });
  }
  try {
    const layout = scanLayout(json);
    if (!layout) return null;
    const head = headSchema.safeParse({ version: layout.version, hash: layout.hash, built_at: layout.built_at });
    if (!head.success) return null; // decodeCanonical names what is wrong
    const names = layout.lists.map((l) => l.name);
    if (names.length !== LIST_NAMES.length || names.some((n, i) => n !== LIST_NAMES[i])) return null;
    const lists: DeltaDecoded['lists'] = {};
    const shape = configSchema.shape as Record<string, z.ZodArray<z.ZodType>>;
    let byId = true;
    for (const { name, spans, ids } of layout.lists) {
      const index = held[name];
      const count = ids.length;
      const keys = new Array<string>(count);
      const refs = index?.size ? new Int32Array(count) : null;
      const fresh: unknown[] = [];
      for (let i = 0; i < count; i++) {
        const bytesOf = json.subarray(spans[2 * i], spans[2 * i + 1]);
        const key = (keys[i] = keyOf(bytesOf));
        const at = index?.get(key);
        if (refs) refs[i] = at ?? -1;
        if (at !== undefined) continue;
        let raw: unknown;
        try { raw = JSON.parse(bytesOf.toString('utf8')); } catch { return null; }
        const parsed = shape[name].element.safeParse(raw);
        if (!parsed.success) throw new SnapshotError(`snapshot failed validation: ${parsed.error.issues.slice(0, 3).map((x) => `${['config', name, i, ...x.path].join('.')}: ${x.message}`).join('; ')}`);
        fresh.push(parsed.data);
      }
      for (let i = 1; byId && i < count; i++) byId = ids[i - 1] < ids[i];
      lists[name] = { keys, held: refs, fresh };
    }
    if (configDigest(json, layout, byId) !== head.data.hash) return null;
    return { version: head.data.version, hash: head.data.hash, built_at: head.data.built_at, lists };
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`snapshot could not be validated: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The config hash (hash.ts) over the entity texts as written. Lists written in id order (as the CP
 * writes them) are already the hash's order: the config's bytes, as they lie in the document, are
 * hashed in place. Otherwise the hash is computed as everywhere else (hashOfTexts).
 */
function configDigest(json: Buffer, layout: Layout, byId: boolean): string {
  if (byId) return createHash('sha256').update('{').update(json.subarray(layout.config[0], layout.config[1])).update('}').digest('hex');
  const ids: Record<string, { id: string }[]> = {};
  const texts: CanonicalConfig['texts'] = {};
  for (const list of layout.lists) {
    ids[list.name] = list.ids.map((id) => ({ id }));
    texts[list.name] = list.ids.map((_, j) => json.toString('utf8', list.spans[2 * j], list.spans[2 * j + 1]));
  }
  return hashOfTexts(ids as unknown as Config, texts);
}

export function validateSnapshot(raw: unknown): Snapshot {
  return validateCanonical(raw).snapshot;
}

function validateCanonical(raw: unknown): { snapshot: Snapshot; texts: CanonicalConfig['texts'] } {
  const parsed = snapshotSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new SnapshotError(`snapshot failed validation: ${first}`);
  }
  const { hash, texts } = canonicalConfig(parsed.data.config);
  if (hash !== parsed.data.hash) throw new SnapshotError(`snapshot hash mismatch: content hashes to ${hash}, header says ${parsed.data.hash}`);
  return { snapshot: parsed.data, texts };
}
