// The snapshot decoder's work and messages (decoder.ts is the client, decode-worker.ts the thread):
// gunzip, JSON.parse, schema validation and the hash check. What goes back is compact: every
// entity's key (a digest of its canonical text) and the canonical JSON of only the entities the
// requester does not hold yet, in chunks it parses one slice at a time. No state is kept between
// requests: what the requester holds comes with each request.
import { createHash } from 'node:crypto';
import { decodeCanonical, SnapshotError } from '@portico/shared';

/** Characters of an entity key: a base64 sha256 prefix (132 bits) of the entity's canonical JSON. */
export const KEY_CHARS = 22;
/** Entities per JSON chunk sent back: ~500 routes are ~0.25 MB, parsed in about a millisecond. */
export const DECODE_CHUNK = 500;

export interface DecodeRequest {
  id: number;
  /** The snapshot's gzip-compressed JSON (the signature already checked); its buffer is transferred. */
  payload: Uint8Array;
  /** Keys of the entities the main thread holds, by list (DecodedList.keys of its last snapshot): only others are sent. */
  held: Record<string, string> | null;
  /** The running version: an older or equal snapshot is answered `ignored` once validated. */
  newerThan: number;
}

export interface DecodedList {
  /** Every entity's key, concatenated (KEY_CHARS each), in the snapshot's order. */
  keys: string;
  /** JSON arrays of the entities not in the baseline, in the same order. */
  fresh: string[];
}

export type DecodeReply =
  | { id: number; status: 'decoded'; version: number; hash: string; built_at: number; lists: Record<string, DecodedList> }
  | { id: number; status: 'ignored'; version: number }
  | { id: number; status: 'error'; error: string };

const keyOf = (text: string): string => createHash('sha256').update(text).digest('base64').slice(0, KEY_CHARS);

function keySet(keys: string | undefined): Set<string> {
  const set = new Set<string>();
  if (typeof keys === 'string') for (let i = 0; i < keys.length; i += KEY_CHARS) set.add(keys.slice(i, i + KEY_CHARS));
  return set;
}

/** Decodes, validates and diffs a snapshot against what the requester holds (the worker thread runs this; small snapshots run it inline). */
export function decodeRequest(req: DecodeRequest): DecodeReply {
  let decoded: ReturnType<typeof decodeCanonical>;
  try {
    decoded = decodeCanonical(req.payload);
  } catch (err) {
    return { id: req.id, status: 'error', error: err instanceof SnapshotError ? err.message : `snapshot could not be decoded: ${(err as Error).message}` };
  }
  const { snapshot, texts } = decoded;
  if (snapshot.version <= req.newerThan) return { id: req.id, status: 'ignored', version: snapshot.version };
  const lists: Record<string, DecodedList> = {};
  for (const [name, list] of Object.entries(texts)) {
    const held = keySet(req.held?.[name]);
    let keyText = '';
    const fresh: string[] = [];
    let chunk: string[] = [];
    for (const text of list) {
      const key = keyOf(text);
      keyText += key;
      if (held.has(key)) continue;
      chunk.push(text);
      if (chunk.length === DECODE_CHUNK) { fresh.push(`[${chunk.join(',')}]`); chunk = []; }
    }
    if (chunk.length) fresh.push(`[${chunk.join(',')}]`);
    lists[name] = { keys: keyText, fresh };
  }
  return { id: req.id, status: 'decoded', version: snapshot.version, hash: snapshot.hash, built_at: snapshot.built_at, lists };
}
