// Wire form of a snapshot: JSON, gzip-compressed. 10,000 routes are several MB of JSON; gzip brings
// that to a few hundred KB, and the NATS object store chunks whatever remains.
import { gunzipSync, gzipSync } from 'node:zlib';
import { canonicalConfig, type CanonicalConfig } from './hash.ts';
import { snapshotSchema, type Snapshot } from './schema.ts';

/** Largest decompressed snapshot accepted: 10,000 routes are a few MB; a gzip bomb stops here. */
export const MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024;

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  return gzipSync(JSON.stringify(snapshot), { level: 6 });
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
