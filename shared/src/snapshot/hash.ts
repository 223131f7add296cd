import { createHash, hash } from 'node:crypto';
import type { Config } from './schema.ts';

/** Quoted object keys: a config's few hundred distinct names, quoted once each (bounded, so hostile keys cannot grow it). */
const quotedKeys = new Map<string, string>();
const quote = (k: string): string => {
  let q = quotedKeys.get(k);
  if (q === undefined) { q = JSON.stringify(k); if (quotedKeys.size < 10_000) quotedKeys.set(k, q); }
  return q;
};

/**
 * JSON with object keys sorted at every level, so equal content serializes to equal bytes. Keys are
 * sorted only when they are not already, and quoted once: the CP canonicalizes every entity of
 * every snapshot.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) if (keys[i - 1] > keys[i]) { keys.sort(); break; }
  const parts: string[] = [];
  for (const k of keys) {
    const v = obj[k];
    if (v !== undefined) parts.push(quote(k) + ':' + canonicalJson(v));
  }
  return '{' + parts.join(',') + '}';
}

/** A config's entities as canonical JSON, list by list in the config's order, and the config hash over them. */
export interface CanonicalConfig {
  hash: string;
  texts: Record<string, string[]>;
}

const byId = (list: { id: string }[]) => (a: number, b: number) => (list[a].id < list[b].id ? -1 : list[a].id > list[b].id ? 1 : 0);

/**
 * The config hash, over the canonical form with every entity list sorted by id, so the order rows
 * come out of the database does not change it. Each list is cut into blocks by content (`endsBlock`,
 * the same blocks a snapshot is written in) and the hash is taken over the blocks' hashes: a writer
 * or a decoder that already knows a block's hash (it did not change since the last snapshot) does
 * not hash its text again, so a one-route write at 10,000 routes hashes ~64 KB instead of 4.9 MB, on
 * the CP and on every DP. The canonical text of each entity is kept: a DP's decoder keys entities by
 * it, to reuse what did not change between versions.
 */
export function canonicalConfig(config: Config): CanonicalConfig {
  const texts: Record<string, string[]> = {};
  const cfg = config as unknown as Record<string, unknown[] | undefined>;
  for (const k of Object.keys(cfg)) if (cfg[k] !== undefined) texts[k] = cfg[k]!.map(canonicalJson);
  return { hash: hashOfTexts(config, texts), texts };
}

/** Entities in a block at most; a block of random ids ends on its own after ~128 (`endsBlock`). */
const BLOCK_MAX = 512;

/**
 * Whether a block ends after the entity with this id, `count` entities in. By content, not by
 * position: an id ending in "00" or "01" (1 in 128 of random uuids) ends one, so a route added or
 * removed changes only its own block, not the blocks after it. A list's last entity ends one too.
 */
export function endsBlock(id: string, count: number): boolean {
  if (count >= BLOCK_MAX) return true;
  const last = id.charCodeAt(id.length - 1);
  return id.charCodeAt(id.length - 2) === 48 && (last === 48 || last === 49);
}

/**
 * Cuts a list of `count` entities, in id order (`idAt(i)`: the id of the i-th), into its blocks:
 * `visit(from, to)` for each, `to` included. The one definition of a block, for the writer, the
 * decoders and the hash.
 */
export function eachBlock(count: number, idAt: (i: number) => string, visit: (from: number, to: number) => void): void {
  for (let from = 0, i = 0; i < count; i++) {
    if (i + 1 < count && !endsBlock(idAt(i), i + 1 - from)) continue;
    visit(from, i);
    from = i + 1;
  }
}

/** A block's hash: sha256 (base64) of its entities' canonical texts joined by commas. */
export const blockHash = (text: string | Uint8Array): string => hash('sha256', text, 'base64');

/**
 * The config hash from its blocks' hashes, list by list in name order: sha256 (hex) of
 * `{"name":[h1,h2,…],…}` where h are the blocks' hashes. One definition for the writer (codec.ts),
 * the decoders and `hashOfTexts`.
 */
export class ConfigDigest {
  private readonly digest = createHash('sha256').update('{');
  private lists = 0;
  private blocks = 0;
  openList(name: string): void { this.digest.update(`${this.lists++ ? ',' : ''}${JSON.stringify(name)}:[`); this.blocks = 0; }
  block(hash: string): void { this.digest.update(this.blocks++ ? `,${hash}` : hash); }
  closeList(): void { this.digest.update(']'); }
  end(): string { return this.digest.update('}').digest('hex'); }
}

/** The config hash from each entity's canonical text (texts[list][i] is canonicalJson(config[list][i])). */
export function hashOfTexts(config: Config, texts: CanonicalConfig['texts']): string {
  const digest = new ConfigDigest();
  const cfg = config as unknown as Record<string, { id: string }[] | undefined>;
  for (const k of Object.keys(cfg).filter((k) => cfg[k] !== undefined).sort()) {
    const list = cfg[k]!;
    const own = texts[k];
    const order = list.map((_, j) => j).sort(byId(list));
    digest.openList(k);
    eachBlock(order.length, (i) => list[order[i]].id, (from, to) => {
      let text = own[order[from]];
      for (let j = from + 1; j <= to; j++) text += `,${own[order[j]]}`;
      digest.block(blockHash(text));
    });
    digest.closeList();
  }
  return digest.end();
}

/**
 * The config hash as releases before block hashes took it: sha256 (hex) over the whole canonical
 * text. Only to accept their snapshots (codec.ts validateCanonical); nothing writes it.
 */
export function legacyHashOfTexts(config: Config, texts: CanonicalConfig['texts']): string {
  const digest = createHash('sha256').update('{');
  const cfg = config as unknown as Record<string, { id: string }[] | undefined>;
  Object.keys(cfg).filter((k) => cfg[k] !== undefined).sort().forEach((k, i) => {
    const list = cfg[k]!;
    const own = texts[k];
    const order = list.map((_, j) => j).sort(byId(list));
    digest.update(`${i ? ',' : ''}${JSON.stringify(k)}:[`);
    order.forEach((j, n) => digest.update(n ? `,${own[j]}` : own[j]));
    digest.update(']');
  });
  return digest.update('}').digest('hex');
}

export function configHash(config: Config): string {
  return canonicalConfig(config).hash;
}
