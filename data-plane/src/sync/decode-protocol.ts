// The snapshot decoder's work and messages (decoder.ts is the client, decode-worker.ts the thread):
// gunzip, JSON.parse, schema validation and the hash check. What goes back is compact: every
// entity's key (a digest of its canonical text) and the canonical JSON of only the entities the
// requester does not hold yet, in chunks it parses one slice at a time. What the requester holds
// comes with each request; what is kept between requests (the last snapshot's entity blocks,
// blockCache, and the index of the held keys, indexes) saves work but no result depends on it.
import { hash, verify, type KeyObject } from 'node:crypto';
import { decodeAgainst, decodeCanonical, KEY_CHARS, MAX_SNAPSHOT_BYTES, SnapshotError, type BlockCache, type DeltaDecoded, type HeldKeys } from '@portico/shared';

/** Characters of an entity key: a base64 sha256 prefix (132 bits) of the entity's canonical JSON. */
export { KEY_CHARS };
/** The decoder thread's nice value (decode-worker.ts): 10, well below the proxy's 0. */
export const DECODER_NICE = 10;
/** Entities per JSON chunk sent back: ~500 routes are ~0.25 MB, parsed in about a millisecond. */
export const DECODE_CHUNK = 500;

export interface DecodeRequest {
  id: number;
  /** The snapshot's gzip-compressed JSON (the signature already checked); its buffer is transferred. */
  payload: Uint8Array;
  /**
   * Keys of the entities the main thread holds, by list (DecodedList.keys of its last snapshot):
   * only others are sent. A number instead: the id of this thread's last `decoded` reply, whose keys
   * the requester holds, so ~220 KB of keys at 10,000 routes are not copied to the thread per write.
   */
  held: Record<string, Uint8Array> | number | null;
  /** The running version: an older or equal snapshot is answered `ignored` once validated. */
  newerThan: number;
}

/**
 * A signature to check over `payload` (its buffer transferred) with `publicKey` (cloned to the
 * thread): the DP's check of a snapshot's signature runs here (decoder.ts, checkSignature).
 */
export interface VerifyRequest { id: number; payload: Uint8Array; verify: { publicKey: KeyObject; signature: Uint8Array } }

export interface DecodedList {
  /**
   * Every entity's key, concatenated (KEY_CHARS bytes each), in the snapshot's order; null when they
   * are exactly the keys the requester holds for this list (nothing in it changed: `fresh` is empty).
   * Bytes moved to the requester, not a string: a 220 KB string costs the thread that receives it
   * ~1 ms in one piece (HeldKeys, codec.ts).
   */
  keys: Uint8Array | null;
  /**
   * For each entity, in order: its index in the requester's list of the last snapshot, or -1 for
   * one it does not hold (the next of `fresh`). Null with `keys`, or when the requester holds none.
   */
  ref: Int32Array | null;
  /** JSON arrays of the entities not in the baseline, in the same order. */
  fresh: string[];
  /**
   * Indexes, ascending, of the requester's entities of this list that this snapshot no longer has
   * (changed or removed); with `ref` and `fresh`, the list's change in proportion to its size, which
   * compile/ works from instead of comparing 10,000 routes. Null when `ref` is.
   */
  dropped: Int32Array | null;
}

/**
 * `spare`: the request's payload memory, moved back by the thread for the requester's next copy
 * (decoder.ts): new memory of a snapshot's size costs page faults on every write.
 */
export type DecodeReply = { spare?: ArrayBuffer } & (
  | { id: number; status: 'decoded'; version: number; hash: string; built_at: number; lists: Record<string, DecodedList> }
  /** `held` named a reply this thread did not give last (a requester out of step): send the keys. */
  | { id: number; status: 'resend' }
  | { id: number; status: 'ignored'; version: number }
  | { id: number; status: 'error'; error: string }
  | { id: number; status: 'verified'; valid: boolean });

const keyOf = (text: string | Uint8Array): string => hash('sha256', text, 'base64').slice(0, KEY_CHARS);

/** The key at index `at` of concatenated keys. */
const keyAt = (keys: Uint8Array, at: number): string => Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength).toString('latin1', at * KEY_CHARS, (at + 1) * KEY_CHARS);

/** Whether two runs of keys are the same bytes. */
const sameKeys = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a !== undefined && b !== undefined && (a === b || Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b));

/** Each held key's index in its list. */
function keyIndex(keys: Uint8Array): Map<string, number> {
  const index = new Map<string, number>();
  for (let i = 0; i < keys.length / KEY_CHARS; i++) index.set(keyAt(keys, i), i);
  return index;
}

/** The held entities (`count` of them) that `ref` does not refer to, by index. */
function droppedOf(ref: Int32Array | null, heldKeys: Uint8Array | undefined): Int32Array | null {
  if (!ref || heldKeys === undefined) return null;
  const used = new Uint8Array(heldKeys.length / KEY_CHARS);
  let kept = 0;
  for (let i = 0; i < ref.length; i++) if (ref[i] >= 0 && used[ref[i]] === 0) { used[ref[i]] = 1; kept++; }
  const dropped = new Int32Array(used.length - kept);
  for (let i = 0, n = 0; i < used.length; i++) if (used[i] === 0) dropped[n++] = i;
  return dropped;
}

/**
 * The entity blocks of the last snapshot this thread decoded (codec.ts): a write that changed one
 * route decompresses, scans and digests one block of ~128 instead of 10,000 entities. It lives as
 * long as the thread (which stops when idle, decoder.ts) and holds one snapshot's JSON at most.
 */
const blockCache: BlockCache = { blocks: new Map() };

/**
 * The index of each list's held keys as last used, with the keys it indexes. The requester holds
 * what the last reply gave it, so the next request brings exactly those keys: the index is then
 * reused (compared by content, so a request holding anything else gets a new one), and after each
 * reply it is brought to the reply's keys by its changes alone (indexUpdated), instead of 10,000
 * keys sliced and hashed into a new Map per write.
 */
const indexes = new Map<string, { keys: Uint8Array; index: Map<string, number> }>();

function heldKeyIndex(name: string, keys: Uint8Array): Map<string, number> {
  const known = indexes.get(name);
  if (known && sameKeys(known.keys, keys)) return known.index;
  const index = keyIndex(keys);
  indexes.set(name, { keys, index });
  return index;
}

/**
 * Brings the index of `name` from the held keys to `keys` (the reply's), given for each new place
 * the held place it came from (`ref`, -1 for a new entity) and the held places no longer used:
 * those keys are deleted, and every key not at its old place is set to its new one.
 */
function indexUpdated(name: string, keys: Uint8Array, ref: Int32Array | null, dropped: Int32Array | null): void {
  const known = indexes.get(name);
  if (!known || !ref || !dropped) { indexes.delete(name); return; }
  for (const at of dropped) known.index.delete(keyAt(known.keys, at));
  for (let i = 0; i < ref.length; i++) if (ref[i] !== i) known.index.set(keyAt(keys, i), i);
  known.keys = keys;
}

/** Whether the signature of a VerifyRequest holds (the worker thread runs this). */
export function verifyRequest(req: VerifyRequest): DecodeReply {
  return { id: req.id, status: 'verified', valid: verify(null, req.payload, req.verify.publicKey, req.verify.signature) };
}

/** This thread's last `decoded` reply: its id and the keys it left the requester holding, by list. */
let lastReply: { id: number; keys: Record<string, Uint8Array> } | null = null;

/** Decodes, validates and diffs a snapshot against what the requester holds (the worker thread runs this; small snapshots run it inline). */
export function decodeRequest(request: DecodeRequest): DecodeReply {
  if (typeof request.held === 'number' && lastReply?.id !== request.held) return { id: request.id, status: 'resend' };
  const req = { ...request, held: typeof request.held === 'number' ? lastReply!.keys : request.held };
  const reply = decodeHeld(req);
  if (reply.status === 'decoded') {
    // This thread keeps the keys it made; the reply carries a copy, which the thread's reply moves.
    const keys: Record<string, Uint8Array> = {};
    for (const [name, list] of Object.entries(reply.lists)) {
      keys[name] = list.keys ?? req.held![name];
      if (list.keys) list.keys = list.keys.slice();
    }
    lastReply = { id: reply.id, keys };
  }
  return reply;
}

function decodeHeld(req: DecodeRequest & { held: Record<string, Uint8Array> | null }): DecodeReply {
  const held: Record<string, HeldKeys> = {};
  for (const [name, keys] of Object.entries(req.held ?? {})) held[name] = { keys, index: heldKeyIndex(name, keys) };
  let delta: DeltaDecoded | null;
  try {
    // Entities the requester holds are not validated again (decodeAgainst); a snapshot not written
    // canonically (an older CP) is decoded in full.
    delta = decodeAgainst(req.payload, held, keyOf, MAX_SNAPSHOT_BYTES, blockCache);
  } catch (err) {
    return { id: req.id, status: 'error', error: err instanceof SnapshotError ? err.message : `snapshot could not be decoded: ${(err as Error).message}` };
  }
  if (!delta) return decodeInFull(req, held);
  if (delta.version <= req.newerThan) return { id: req.id, status: 'ignored', version: delta.version };
  const lists: Record<string, DecodedList> = {};
  for (const [name, list] of Object.entries(delta.lists)) {
    const keyText = list.keys;
    const fresh: string[] = [];
    for (let i = 0; i < list.fresh.length; i += DECODE_CHUNK) fresh.push(JSON.stringify(list.fresh.slice(i, i + DECODE_CHUNK)));
    const same = sameKeys(keyText, req.held?.[name]);
    const ref = same ? null : list.held;
    const dropped = droppedOf(ref, req.held?.[name]);
    if (!same) indexUpdated(name, keyText, ref, dropped);
    lists[name] = { keys: same ? null : keyText, ref, fresh, dropped };
  }
  return { id: req.id, status: 'decoded', version: delta.version, hash: delta.hash, built_at: delta.built_at, lists };
}

/** Every entity validated and canonicalized here (decodeCanonical), then diffed against what the requester holds. */
function decodeInFull(req: DecodeRequest & { held: Record<string, Uint8Array> | null }, heldKeys: Record<string, HeldKeys>): DecodeReply {
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
    const held = heldKeys[name]?.index ?? new Map<string, number>();
    const ref = held.size ? new Int32Array(list.length) : null;
    const keyText = Buffer.from(new ArrayBuffer(list.length * KEY_CHARS));
    const fresh: string[] = [];
    let chunk: string[] = [];
    for (let i = 0; i < list.length; i++) {
      const text = list[i];
      const key = keyOf(text);
      keyText.write(key, i * KEY_CHARS, KEY_CHARS, 'latin1');
      const at = held.get(key);
      if (ref) ref[i] = at ?? -1;
      if (at !== undefined) continue;
      chunk.push(text);
      if (chunk.length === DECODE_CHUNK) { fresh.push(`[${chunk.join(',')}]`); chunk = []; }
    }
    if (chunk.length) fresh.push(`[${chunk.join(',')}]`);
    const same = sameKeys(keyText, req.held?.[name]);
    const dropped = same ? null : droppedOf(ref, req.held?.[name]);
    if (!same) indexUpdated(name, keyText, ref, dropped);
    lists[name] = { keys: same ? null : keyText, ref: same ? null : ref, fresh, dropped };
  }
  return { id: req.id, status: 'decoded', version: snapshot.version, hash: snapshot.hash, built_at: snapshot.built_at, lists };
}
