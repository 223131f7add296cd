// Wire form of a snapshot: JSON, gzip-compressed. 10,000 routes are several MB of JSON; gzip brings
// that to a few hundred KB, and the NATS object store chunks whatever remains.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { canonicalConfig, type CanonicalConfig } from './hash.ts';
import { configSchema, snapshotSchema, type Snapshot } from './schema.ts';

/** Largest decompressed snapshot accepted: 10,000 routes are a few MB; a gzip bomb stops here. */
export const MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024;

/**
 * Every entity is written as its canonical text (keys sorted at every level, hash.ts), so a DP can
 * take `JSON.stringify` of what it parsed as that text instead of canonicalizing it again
 * (decodeAgainst). `texts`: the config's canonical texts when the caller already has them.
 */
export function encodeSnapshot(snapshot: Snapshot, texts: CanonicalConfig['texts'] = canonicalConfig(snapshot.config).texts): Uint8Array {
  const lists = Object.keys(snapshot.config).sort().map((k) => `${JSON.stringify(k)}:[${texts[k].join(',')}]`);
  const json = `{"built_at":${JSON.stringify(snapshot.built_at)},"config":{${lists.join(',')}},"hash":${JSON.stringify(snapshot.hash)},"version":${JSON.stringify(snapshot.version)}}`;
  return gzipSync(json, { level: 6 });
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

const headSchema = snapshotSchema.extend({ config: z.strictObject(Object.fromEntries(Object.keys(configSchema.shape).map((k) => [k, z.array(z.unknown())]))) });

/**
 * decodeCanonical against entities already held, for a DP's decoder: an entity whose text (its key,
 * `keyOf`) is one the requester holds was validated when it arrived and is not validated again;
 * only new ones go through the schema. Relies on the CP writing entities as canonical text
 * (encodeSnapshot), so `JSON.stringify` of the parsed entity is its canonical text. Null when that
 * does not hold (the hash over those texts is not the snapshot's: a snapshot from an older CP): the
 * caller then decodes in full (decodeCanonical). Throws SnapshotError as decodeCanonical does.
 */
export function decodeAgainst(bytes: Uint8Array, held: Record<string, ReadonlyMap<string, number>>, keyOf: (text: string) => string, maxBytes = MAX_SNAPSHOT_BYTES): DeltaDecoded | null {
  let raw: unknown;
  try {
    raw = JSON.parse(gunzipSync(bytes, { maxOutputLength: maxBytes }).toString('utf8'));
  } catch (cause) {
    throw new SnapshotError('snapshot is not gzip-compressed JSON', { cause });
  }
  try {
    const head = headSchema.safeParse(raw);
    if (!head.success) return null; // decodeCanonical names what is wrong
    const config = head.data.config as Record<string, unknown[]>;
    const digest = createHash('sha256').update('{');
    const lists: DeltaDecoded['lists'] = {};
    const shape = configSchema.shape as Record<string, z.ZodArray<z.ZodType>>;
    Object.keys(config).sort().forEach((name, n) => {
      const list = config[name];
      const index = held[name];
      const texts = list.map((e) => JSON.stringify(e));
      const keys = texts.map(keyOf);
      const refs = index?.size ? new Int32Array(list.length) : null;
      const fresh: unknown[] = [];
      for (let i = 0; i < list.length; i++) {
        const at = index?.get(keys[i]);
        if (refs) refs[i] = at ?? -1;
        if (at !== undefined) continue;
        const parsed = shape[name].element.safeParse(list[i]);
        if (!parsed.success) throw new SnapshotError(`snapshot failed validation: ${parsed.error.issues.slice(0, 3).map((x) => `${['config', name, i, ...x.path].join('.')}: ${x.message}`).join('; ')}`);
        fresh.push(parsed.data);
      }
      const ids = list.map((e) => (e as { id: string }).id);
      const order = ids.map((_, j) => j).sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
      digest.update(`${n ? ',' : ''}${JSON.stringify(name)}:[`);
      order.forEach((j, m) => digest.update(m ? `,${texts[j]}` : texts[j]));
      digest.update(']');
      lists[name] = { keys, held: refs, fresh };
    });
    if (digest.update('}').digest('hex') !== head.data.hash) return null;
    return { version: head.data.version, hash: head.data.hash, built_at: head.data.built_at, lists };
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`snapshot could not be validated: ${(err as Error).message}`, { cause: err });
  }
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
