// Wire form of a snapshot: JSON, gzip-compressed. 10,000 routes are several MB of JSON; gzip brings
// that to a few hundred KB, and the NATS object store chunks whatever remains.
import { gunzipSync, gzipSync } from 'node:zlib';
import { configHash } from './hash.ts';
import { snapshotSchema, type Snapshot } from './schema.ts';

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  return gzipSync(JSON.stringify(snapshot), { level: 6 });
}

export class SnapshotError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotError';
  }
}

/** Decode and validate a snapshot: schema, and the hash recomputed over its content. Throws SnapshotError. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  let raw: unknown;
  try {
    raw = JSON.parse(gunzipSync(bytes).toString('utf8'));
  } catch (cause) {
    throw new SnapshotError('snapshot is not gzip-compressed JSON', { cause });
  }
  return validateSnapshot(raw);
}

export function validateSnapshot(raw: unknown): Snapshot {
  const parsed = snapshotSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new SnapshotError(`snapshot failed validation: ${first}`);
  }
  const hash = configHash(parsed.data.config);
  if (hash !== parsed.data.hash) throw new SnapshotError(`snapshot hash mismatch: content hashes to ${hash}, header says ${parsed.data.hash}`);
  return parsed.data;
}
