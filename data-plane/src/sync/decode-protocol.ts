// Messages between the snapshot decoder (decoder.ts, on the proxy's thread) and its worker thread
// (decode-worker.ts).

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
