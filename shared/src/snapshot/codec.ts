// Wire form of a snapshot: JSON, gzip-compressed. 10,000 routes are several MB of JSON; gzip brings
// that to a few hundred KB, and the NATS object store chunks whatever remains.
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { blockHash, canonicalConfig, ConfigDigest, eachBlock, endsBlock, hashOfTexts, legacyHashOfTexts, type CanonicalConfig } from './hash.ts';
import { gzipMember, MEMBER_ENTITIES, MEMBER_OTHER, walkMembers } from './members.ts';
import { configSchema, snapshotSchema, type Config, type Snapshot } from './schema.ts';

/** Largest decompressed snapshot accepted: 10,000 routes are a few MB; a gzip bomb stops here. */
export const MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024;

/**
 * Every entity is written as its canonical text (keys sorted at every level, hash.ts), so a DP can
 * take each entity's text as it lies in the document instead of canonicalizing it again
 * (decodeAgainst). `texts`: the config's canonical texts when the caller already has them. The
 * header's hash is `snapshot.hash` as given (tests write wrong ones on purpose).
 */
export function encodeSnapshot(snapshot: Snapshot, texts: CanonicalConfig['texts'] = canonicalConfig(snapshot.config).texts): Uint8Array {
  return new SnapshotWriter().write(snapshot, texts, snapshot.hash)?.bytes ?? writeSnapshot(snapshot, configText(snapshot.config, texts));
}

/**
 * A snapshot of `config` with its hash and bytes, from the entities' canonical texts. When every
 * list is in id order (the CP reads them so) the bytes are written in the blocks the hash is
 * computed over (SnapshotWriter, hash.ts), each block hashed as it is written.
 */
export function sealSnapshot(head: { version: number; built_at: number }, config: Config, texts: CanonicalConfig['texts']): SealedSnapshot {
  return new SnapshotWriter().seal(head, config, texts);
}

/** The config object's members, lists by name, each entity as its canonical text (`{` and `}` left out). */
function configText(config: Config, texts: CanonicalConfig['texts']): string {
  return Object.keys(config).sort().map((k) => `${JSON.stringify(k)}:[${texts[k].join(',')}]`).join(',');
}

/**
 * The document as one gzip member (lists not in id order: a snapshot not from a CP). Level 3: at
 * 10,000 routes (4.9 MB of JSON) 11 ms against 22 at the default 6, for 8% more bytes (424 KB)
 * and about a millisecond more to decompress.
 */
function writeSnapshot(snapshot: Snapshot, configText: string): Uint8Array {
  const json = `{"built_at":${JSON.stringify(snapshot.built_at)},"config":{${configText}},"hash":${JSON.stringify(snapshot.hash)},"version":${JSON.stringify(snapshot.version)}}`;
  return gzipSync(json, { level: 3 });
}

/**
 * A run of one list's entities as last written: their texts, their JSON (with the comma before them
 * when not the list's first), its member, and the hash of its entities' text (blockHash).
 */
interface Block { texts: string[]; leading: boolean; plain: Buffer; member: Buffer; hash: string }

/**
 * A snapshot written: its bytes, and the same bytes as the gzip members they are the concatenation
 * of (`parts`). An entity block unchanged since the writer's last snapshot is the very Buffer it
 * gave then, so a store of parts (the CP's config_blocks) can tell reused parts by identity.
 */
export interface SealedSnapshot { snapshot: Snapshot; bytes: Uint8Array; parts: Uint8Array[] }

/**
 * Writes snapshots whose lists are in id order as gzip members (members.ts): the head, list
 * openings and the tail in small members, the entities in blocks of ~128, each a member kept until
 * the next write. A block whose entities' texts are the very ones of the last write is not
 * compressed nor hashed again: at 10,000 routes a one-route write compresses and hashes ~64 KB
 * instead of 4.9 MB (the config hash is over block hashes, hash.ts). The CP keeps one writer
 * (SnapshotBuilder); its memory is one snapshot's JSON and compressed bytes.
 */
export class SnapshotWriter {
  private blocks = new Map<string, Block>();

  /** The snapshot of `config` (lists in id order, else as sealSnapshot has always written them), its hash computed here. */
  seal(head: { version: number; built_at: number }, config: Config, texts: CanonicalConfig['texts']): SealedSnapshot {
    const written = this.write({ ...head, config }, texts);
    if (written) return written;
    const text = configText(config, texts);
    const snapshot: Snapshot = { version: head.version, hash: hashOfTexts(config, texts), built_at: head.built_at, config };
    const bytes = writeSnapshot(snapshot, text);
    return { snapshot, bytes, parts: [bytes] };
  }

  /**
   * The snapshot in blocks, or null when a list is not in id order (checked on the ids the blocks
   * are cut by, not in a pass of its own; nothing is kept from a write given up). `claimedHash`:
   * written into the head instead of the one computed (encodeSnapshot).
   */
  write(head: { version: number; built_at: number; config: Config }, texts: CanonicalConfig['texts'], claimedHash?: string): SealedSnapshot | null {
    const digest = new ConfigDigest();
    const members: Buffer[] = [];
    const next = new Map<string, Block>();
    let pending = `{"built_at":${JSON.stringify(head.built_at)},"config":{`;
    const flush = () => { if (pending) members.push(gzipMember(Buffer.from(pending), MEMBER_OTHER)); pending = ''; };
    const config = head.config as unknown as Record<string, { id: string }[]>;
    for (const [n, name] of Object.keys(config).sort().entries()) {
      const list = config[name];
      const own = texts[name];
      // eachBlock reads the ids in order up to the one before last: each is checked against the one before.
      let before = '';
      let ordered = list.length < 2 || list[list.length - 2].id < list[list.length - 1].id;
      const idAt = (i: number) => { const id = list[i].id; if (i > 0 && !(before < id)) ordered = false; before = id; return id; };
      pending += `${n ? ',' : ''}${JSON.stringify(name)}:[`;
      digest.openList(name);
      eachBlock(list.length, idAt, (from, to) => {
        if (!ordered) return;
        flush();
        const key = `${name}\n${list[from].id}`;
        const leading = from > 0;
        const blockTexts = own.slice(from, to + 1);
        const cached = this.blocks.get(key);
        let block = cached && cached.leading === leading && sameStrings(cached.texts, blockTexts) ? cached : undefined;
        if (!block) {
          const plain = Buffer.from(`${leading ? ',' : ''}${blockTexts.join(',')}`);
          block = { texts: blockTexts, leading, plain, member: gzipMember(plain, MEMBER_ENTITIES), hash: blockHash(leading ? plain.subarray(1) : plain) };
        }
        next.set(key, block);
        members.push(block.member);
        digest.block(block.hash);
      });
      if (!ordered) return null;
      pending += ']';
      digest.closeList();
    }
    const hash = digest.end();
    const snapshot: Snapshot = { version: head.version, hash, built_at: head.built_at, config: head.config };
    pending += `},"hash":${JSON.stringify(claimedHash ?? hash)},"version":${JSON.stringify(head.version)}}`;
    flush();
    this.blocks = next;
    return { snapshot, bytes: Buffer.concat(members), parts: members };
  }
}

function sameStrings(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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

/** Characters of an entity key (decodeAgainst's `keyOf` gives exactly this many): 132 bits of a base64 sha256. */
export const KEY_CHARS = 22;

/**
 * What the requester holds of one list: its entities' keys, concatenated in its order (KEY_CHARS
 * ASCII bytes each), and each key's index in it. Keys travel as bytes, not a string: at 10,000
 * routes they are 220 KB, and a string that large is a large-object allocation in V8 (~1 ms here,
 * on whichever thread makes or receives it), where bytes move between threads for nothing.
 */
export interface HeldKeys { keys: Uint8Array; index: ReadonlyMap<string, number> }

/** What decodeAgainst gives: the snapshot's entities list by list, held ones by index, fresh ones validated. */
export interface DeltaDecoded {
  version: number;
  hash: string;
  built_at: number;
  /** `keys`: every entity's key, concatenated in the list's order (KEY_CHARS bytes each), in an ArrayBuffer of its own. */
  lists: Record<string, { keys: Uint8Array; held: Int32Array | null; fresh: unknown[] }>;
}

const headSchema = snapshotSchema.omit({ config: true });
const LIST_NAMES = Object.keys(configSchema.shape).sort();

/**
 * A run of one list's entities in the document: a block decoded before (`known`, its member's text
 * starting at `at`, with the comma before it when it does not open the list), or entities scanned
 * here, each one's span (start, end) in the document, top-level id and (once decodeAgainst keyed
 * it) key. A write that changed one route at 10,000 routes is ~80 known pieces and one scanned:
 * the work per write follows the blocks, not the entities.
 */
type Piece = { known: KnownBlock; at: number } | { known: null; spans: number[]; ids: string[]; keys: string[] };

/** A snapshot as encodeSnapshot lays it out: the head's fields and each list's pieces. */
interface Layout {
  version: number; hash: string; built_at: number;
  lists: { name: string; pieces: Piece[]; count: number }[];
}

const QUOTE = 34, COMMA = 44, BACKSLASH = 92, OPEN_BRACE = 123, CLOSE_BRACE = 125, OPEN_BRACKET = 91, CLOSE_BRACKET = 93;
const ID_KEY = Buffer.from('"id":"');

/**
 * Reads the layout encodeSnapshot writes (`{"built_at":N,"config":{"name":[{…},…],…},"hash":"…",
 * "version":N}`, no whitespace) from the UTF-8 bytes, without parsing the entities: each one's
 * span is where its braces balance, and its top-level `id` is read on the way; a known block
 * (`known`, by where its member starts) is taken whole, as scanned when it was learned. (Bytes, not
 * a string: UTF-8 never puts a byte below 0x80 inside a multi-byte character, and a byte array
 * scans several times faster than a string's characters.) Null on anything else (another writer's
 * layout, bytes that are not JSON): the caller decodes in full, which names what is wrong. A span
 * accepted here is not yet known to be JSON; the hash check and JSON.parse of each new one settle that.
 */
function scanLayout(b: Buffer, known: ReadonlyMap<number, KnownBlock> | null = null): Layout | null {
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
  const lists: Layout['lists'] = [];
  if (b[at] !== CLOSE_BRACE) {
    for (;;) {
      if (!expect('"')) return null;
      const close = b.indexOf('":[', at, 'latin1');
      if (close < 0 || close - at > 64) return null;
      const name = b.toString('latin1', at, close);
      at = close + 3;
      const pieces: Piece[] = [];
      let count = 0;
      let run: Extract<Piece, { known: null }> | null = null;
      if (b[at] !== CLOSE_BRACKET) {
        for (;;) {
          // A block decoded before starts here (with the comma before it unless it opens the list).
          const block = known?.get(at);
          if (block && block.leading === (count > 0)) {
            if (b[at + (block.leading ? 1 : 0)] !== OPEN_BRACE) return null;
            pieces.push({ known: block, at });
            run = null;
            count += block.ids.length;
            at += block.plain.length;
          } else {
            if (count > 0 && b[at++] !== COMMA) return null;
            if (!run) { run = { known: null, spans: [], ids: [], keys: [] }; pieces.push(run); }
            const end = endOfObject(b, at, run.ids);
            if (end < 0 || run.ids.length !== run.spans.length / 2 + 1) return null;
            run.spans.push(at, end);
            count++;
            at = end;
          }
          if (b[at] === CLOSE_BRACKET) break;
          if (b[at] !== COMMA) return null;
        }
      }
      at++; // ']'
      lists.push({ name, pieces, count });
      if (b[at] === CLOSE_BRACE) break;
      if (b[at++] !== COMMA) return null;
    }
  }
  at++; // '}' of config
  if (!expect(',"hash":"')) return null;
  const hashEnd = b.indexOf(QUOTE, at);
  if (hashEnd < 0) return null;
  const hash = b.toString('latin1', at, hashEnd);
  at = hashEnd + 1;
  if (!expect(',"version":')) return null;
  const version = number();
  if (version === null || !expect('}') || at !== b.length) return null;
  return { version, hash, built_at: builtAt, lists };
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

/** Thrown inside decodeAgainst for an entity text that is not JSON: the snapshot is then decoded in full. */
const NOT_JSON = Symbol('not JSON');

/**
 * decodeCanonical against entities already held, for a DP's decoder: an entity whose text (its key,
 * `keyOf`, KEY_CHARS long) is one the requester holds was validated when it arrived and is neither
 * parsed nor validated again; only new ones are. Relies on the CP writing entities as canonical text
 * (encodeSnapshot): each entity's text is sliced from the document as it stands (scanLayout) and
 * the hash is checked over those texts. With a block cache, a known block the requester holds in
 * the same order (its keys at one place of the held ones) is matched whole. Null when that does not
 * hold (another layout, or the hash over those texts is not the snapshot's: a snapshot from an older
 * CP): the caller then decodes in full (decodeCanonical). Throws SnapshotError as decodeCanonical does.
 */
export function decodeAgainst(bytes: Uint8Array, held: Record<string, HeldKeys>, keyOf: (text: Uint8Array) => string, maxBytes = MAX_SNAPSHOT_BYTES, cache?: BlockCache): DeltaDecoded | null {
  let json: Buffer;
  const unpacked = cache ? unpackMembers(bytes, cache, maxBytes) : null;
  if (unpacked) json = unpacked.json;
  else {
    try {
      json = gunzipSync(bytes, { maxOutputLength: maxBytes });
    } catch (cause) {
      throw new SnapshotError('snapshot is not gzip-compressed JSON', { cause });
    }
  }
  try {
    const layout = scanLayout(json, unpacked?.known);
    if (!layout) return null;
    const head = headSchema.safeParse({ version: layout.version, hash: layout.hash, built_at: layout.built_at });
    if (!head.success) return null; // decodeCanonical names what is wrong
    const names = layout.lists.map((l) => l.name);
    if (names.length !== LIST_NAMES.length || names.some((n, i) => n !== LIST_NAMES[i])) return null;
    const lists: DeltaDecoded['lists'] = {};
    const shape = configSchema.shape as Record<string, z.ZodArray<z.ZodType>>;
    let byId = true;
    for (const { name, pieces, count } of layout.lists) {
      const index = held[name]?.index;
      const heldKeys = held[name] ? asBuffer(held[name].keys) : Buffer.alloc(0);
      const refs = index?.size ? new Int32Array(count) : null;
      const keys = Buffer.from(new ArrayBuffer(count * KEY_CHARS));
      const fresh: unknown[] = [];
      // The entity at `i` (its text from start to end) is not held: parsed and validated.
      const take = (i: number, start: number, end: number) => {
        let raw: unknown;
        try { raw = JSON.parse(json.toString('utf8', start, end)); } catch { throw NOT_JSON; }
        const parsed = shape[name].element.safeParse(raw);
        if (!parsed.success) throw new SnapshotError(`snapshot failed validation: ${parsed.error.issues.slice(0, 3).map((x) => `${['config', name, i, ...x.path].join('.')}: ${x.message}`).join('; ')}`);
        fresh.push(parsed.data);
      };
      let i = 0;
      let lastId = '';
      for (const piece of pieces) {
        if (piece.known) {
          const b = piece.known;
          const n = b.ids.length;
          if (byId) byId = b.ordered && (i === 0 || lastId < b.ids[0]);
          lastId = b.ids[n - 1];
          b.keyBytes.copy(keys, i * KEY_CHARS);
          const first = index?.get(b.keys[0]);
          if (refs && first !== undefined && (first + n) * KEY_CHARS <= heldKeys.length && heldKeys.compare(b.keyBytes, 0, b.keyBytes.length, first * KEY_CHARS, (first + n) * KEY_CHARS) === 0) {
            for (let j = 0; j < n; j++) refs[i + j] = first + j;
            i += n;
            continue;
          }
          for (let j = 0; j < n; j++, i++) {
            const at = index?.get(b.keys[j]);
            if (refs) refs[i] = at ?? -1;
            if (at === undefined) take(i, piece.at + b.spans[2 * j], piece.at + b.spans[2 * j + 1]);
          }
        } else {
          for (let j = 0; j < piece.ids.length; j++, i++) {
            const id = piece.ids[j];
            if (byId) byId = i === 0 || lastId < id;
            lastId = id;
            const start = piece.spans[2 * j];
            const end = piece.spans[2 * j + 1];
            const key = keyOf(json.subarray(start, end));
            if (key.length !== KEY_CHARS) throw new Error(`decodeAgainst: keyOf gave ${key.length} characters, not ${KEY_CHARS}`);
            piece.keys.push(key);
            keys.write(key, i * KEY_CHARS, KEY_CHARS, 'latin1');
            const at = index?.get(key);
            if (refs) refs[i] = at ?? -1;
            if (at === undefined) take(i, start, end);
          }
        }
      }
      lists[name] = { keys: new Uint8Array(keys.buffer), held: refs, fresh };
    }
    const hashed: Hashed = new Map();
    if (configDigest(json, layout, byId, hashed) !== head.data.hash) return null;
    if (cache && unpacked) cache.blocks = learnBlocks(json, layout, unpacked, hashed);
    return { version: head.data.version, hash: head.data.hash, built_at: head.data.built_at, lists };
  } catch (err) {
    if (err === NOT_JSON) return null;
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`snapshot could not be validated: ${(err as Error).message}`, { cause: err });
  }
}

/** How a known block's ids cut it into hash blocks (hash.ts) when it starts one: as one (`EXACT`), as one only at its list's end (`OPEN`), or otherwise. */
const CUT_EXACT = 0, CUT_OPEN = 1, CUT_OTHER = 2;

/**
 * What a decoder learned from an entity block (members.ts): its compressed bytes (`packed`, the
 * cache's key is from its trailer), its JSON, each entity's span in it, id and key (and the keys
 * concatenated, as bytes), whether its ids ascend, how they cut it (CUT_*), and the hash of its entities'
 * text (blockHash).
 */
export interface KnownBlock {
  digest: string; packed: Buffer; plain: Buffer; leading: boolean; spans: Int32Array; ids: string[]; keys: string[];
  keyBytes: Buffer; ordered: boolean; cut: number; hash: string;
}

/**
 * The entity blocks of the last snapshot decoded, by their member's trailer (CRC-32 and size of the
 * JSON) and length, the bytes compared in full: a member whose bytes are those of a known block is
 * neither decompressed nor scanned nor hashed again. A DP's decoder thread keeps one; `blocks` is
 * replaced by each decode that succeeds, so it holds one snapshot's blocks at most (and the memory of
 * one document).
 */
export interface BlockCache {
  blocks: Map<string, KnownBlock>;
  /** The memory the last document was assembled in, reused by the next (up to SCRATCH_MAX_BYTES). */
  scratch?: Buffer;
}

/** Largest document whose memory a BlockCache keeps for the next decode. */
const SCRATCH_MAX_BYTES = 64 * 1024 * 1024;

interface Unpacked {
  json: Buffer;
  /** Known blocks by where they start in `json`. */
  known: Map<number, KnownBlock>;
  /** Entity blocks decompressed here: where they lie in `json`, their cache key and compressed bytes. */
  fresh: { start: number; end: number; digest: string; packed: Buffer }[];
}

/** A view of `bytes` as a Buffer (no copy). */
const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** A member's cache key: its gzip trailer (CRC-32 and size of its content) and its length. */
const memberKey = (packed: Buffer): string => `${packed.readUInt32LE(packed.length - 8)}:${packed.readUInt32LE(packed.length - 4)}:${packed.length}`;

/**
 * The document from a snapshot written as members (members.ts): known blocks as they were, the
 * other members decompressed one by one. Null when the bytes are not such members, or one does not
 * decompress: the caller decompresses them whole, which names what is wrong.
 */
function unpackMembers(bytes: Uint8Array, cache: BlockCache, maxBytes: number): Unpacked | null {
  const members = walkMembers(bytes);
  if (!members) return null;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Buffer[] = [];
  const known = new Map<number, KnownBlock>();
  const fresh: Unpacked['fresh'] = [];
  let size = 0;
  try {
    for (const m of members) {
      const packed = view.subarray(m.start, m.end);
      const digest = m.kind === MEMBER_ENTITIES ? memberKey(packed) : null;
      const found = digest === null ? undefined : cache.blocks.get(digest);
      const hit = found !== undefined && found.packed.equals(packed) ? found : undefined;
      if (size >= maxBytes) return null;
      const plain = hit ? hit.plain : gunzipSync(packed, { maxOutputLength: maxBytes - size });
      if (hit) known.set(size, hit);
      else if (digest !== null) fresh.push({ start: size, end: size + plain.length, digest, packed });
      parts.push(plain);
      size += plain.length;
    }
  } catch {
    return null;
  }
  if (size > maxBytes) return null;
  // Into the memory the last decode used, when it is large enough: at 10,000 routes the document is
  // 4.9 MB, and new memory that size cost ~5 ms of page faults per write on a 2-core VM. Nothing a
  // decode gives or keeps is a view into the document (blocks and entities are copied out of it).
  let doc = cache.scratch;
  if (!doc || doc.length < size) {
    doc = Buffer.allocUnsafeSlow(Math.ceil(size * 1.25));
    cache.scratch = size <= SCRATCH_MAX_BYTES ? doc : undefined;
  }
  let at = 0;
  for (const p of parts) { doc.set(p, at); at += p.length; }
  return { json: doc.subarray(0, size), known, fresh };
}

/**
 * The blocks of a snapshot just decoded: the known ones it used, and each fresh member that holds
 * whole entities of one list (its bytes are checked to be exactly those: a comma when it does not
 * open the list, then entities separated by commas), copied out of the document. Only scanned
 * entities can lie in a fresh member: a known block's bytes are a member of their own.
 */
function learnBlocks(json: Buffer, layout: Layout, unpacked: Unpacked, hashed: Hashed): Map<string, KnownBlock> {
  const out = new Map<string, KnownBlock>();
  for (const block of unpacked.known.values()) out.set(block.digest, block);
  if (!unpacked.fresh.length) return out;
  // Every scanned entity in document order: lists in order, each list's spans ascending.
  const starts: number[] = [];
  const ends: number[] = [];
  const ids: string[] = [];
  const keys: string[] = [];
  const first: boolean[] = [];
  for (const list of layout.lists) {
    let i = 0;
    for (const piece of list.pieces) {
      if (piece.known) { i += piece.known.ids.length; continue; }
      for (let j = 0; j < piece.ids.length; j++, i++) {
        starts.push(piece.spans[2 * j]); ends.push(piece.spans[2 * j + 1]); ids.push(piece.ids[j]); keys.push(piece.keys[j]); first.push(i === 0);
      }
    }
  }
  let j = 0;
  for (const f of unpacked.fresh) {
    while (j < starts.length && starts[j] < f.start) j++;
    const leading = json[f.start] === COMMA;
    if (j === starts.length || starts[j] !== f.start + (leading ? 1 : 0) || first[j] === leading) continue;
    const from = j;
    while (j + 1 < starts.length && ends[j] < f.end && starts[j + 1] === ends[j] + 1 && !first[j + 1]) j++;
    if (ends[j] !== f.end) continue;
    const spans = new Int32Array(2 * (j - from + 1));
    for (let e = from; e <= j; e++) { spans[2 * (e - from)] = starts[e] - f.start; spans[2 * (e - from) + 1] = ends[e] - f.start; }
    const text = json.subarray(f.start + (leading ? 1 : 0), f.end);
    const seen = hashed.get(f.start + (leading ? 1 : 0));
    const hash = seen !== undefined && seen.end === f.end ? seen.hash : blockHash(text);
    const blockIds = ids.slice(from, j + 1);
    const blockKeys = keys.slice(from, j + 1);
    out.set(f.digest, {
      digest: f.digest, packed: Buffer.from(f.packed), plain: Buffer.from(json.subarray(f.start, f.end)), leading, spans, ids: blockIds, keys: blockKeys,
      keyBytes: Buffer.from(blockKeys.join(''), 'latin1'), ordered: blockIds.every((id, k) => k === 0 || blockIds[k - 1] < id), cut: cutOf(blockIds), hash,
    });
    j++;
  }
  return out;
}

/** How `ids` cut into hash blocks when the first starts one (CUT_*). */
function cutOf(ids: string[]): number {
  for (let k = 0; k + 1 < ids.length; k++) if (endsBlock(ids[k], k + 1)) return CUT_OTHER;
  return endsBlock(ids[ids.length - 1], ids.length) ? CUT_EXACT : CUT_OPEN;
}

/** Block hashes configDigest computed or reused, by where the block's text starts in the document. */
type Hashed = Map<number, { end: number; hash: string }>;

/**
 * The config hash (hash.ts) over the entity texts as written. Lists written in id order (as the CP
 * writes them) are already the hash's order: each block's text is hashed where it lies in the
 * document, or not at all when a known block is exactly that block; `hashed` gets each block's hash
 * by where its text starts, for learnBlocks. Otherwise the hash is computed as everywhere else
 * (hashOfTexts).
 */
function configDigest(json: Buffer, layout: Layout, byId: boolean, hashed: Hashed): string {
  if (byId) {
    const digest = new ConfigDigest();
    for (const list of layout.lists) {
      digest.openList(list.name);
      // The cut of eachBlock (hash.ts), entity by entity, but for a known block that starts a hash block and is one.
      let start = 0;
      let inBlock = 0;
      let seen = 0;
      const entity = (id: string, from: number, to: number) => {
        if (inBlock++ === 0) start = from;
        if (++seen === list.count || endsBlock(id, inBlock)) {
          const h = blockHash(json.subarray(start, to));
          hashed.set(start, { end: to, hash: h });
          digest.block(h);
          inBlock = 0;
        }
      };
      for (const piece of list.pieces) {
        if (piece.known) {
          const b = piece.known;
          const n = b.ids.length;
          if (inBlock === 0 && (b.cut === CUT_EXACT || (b.cut === CUT_OPEN && seen + n === list.count))) {
            hashed.set(piece.at + (b.leading ? 1 : 0), { end: piece.at + b.plain.length, hash: b.hash });
            digest.block(b.hash);
            seen += n;
            continue;
          }
          for (let j = 0; j < n; j++) entity(b.ids[j], piece.at + b.spans[2 * j], piece.at + b.spans[2 * j + 1]);
        } else {
          for (let j = 0; j < piece.ids.length; j++) entity(piece.ids[j], piece.spans[2 * j], piece.spans[2 * j + 1]);
        }
      }
      digest.closeList();
    }
    return digest.end();
  }
  const ids: Record<string, { id: string }[]> = {};
  const texts: CanonicalConfig['texts'] = {};
  for (const list of layout.lists) {
    const listIds: { id: string }[] = (ids[list.name] = []);
    const listTexts: string[] = (texts[list.name] = []);
    for (const piece of list.pieces) {
      const n = piece.known ? piece.known.ids.length : piece.ids.length;
      for (let j = 0; j < n; j++) {
        const [id, from, to] = piece.known ? [piece.known.ids[j], piece.at + piece.known.spans[2 * j], piece.at + piece.known.spans[2 * j + 1]] : [piece.ids[j], piece.spans[2 * j], piece.spans[2 * j + 1]];
        listIds.push({ id });
        listTexts.push(json.toString('utf8', from, to));
      }
    }
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
  // A snapshot from before block hashes (a DP's disk cache written by an older release) is accepted
  // by the hash it was written with, so an upgraded node still starts from its cache.
  if (hash !== parsed.data.hash && legacyHashOfTexts(parsed.data.config, texts) !== parsed.data.hash) throw new SnapshotError(`snapshot hash mismatch: content hashes to ${hash}, header says ${parsed.data.hash}`);
  return { snapshot: parsed.data, texts };
}
