// The audit log's hash chain, as pure functions (no database): each entry's hash covers its own
// fields and the previous entry's hash, so editing a row breaks its hash, and deleting one leaves a
// gap in `seq` or a `prev_hash` that matches nothing.
import { createHash } from 'node:crypto';

/** `prev_hash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** What an entry records; its hash covers exactly these fields. */
export interface AuditFields {
  seq: number;
  created_at: number;
  request_id: string;
  admin_id: string | null;
  admin_username: string | null;
  token_prefix: string | null;
  method: string;
  path: string;
  entity_type: string;
  entity_id: string;
  change: unknown;
  config_version: number;
  client_ip: string;
}

export interface AuditEntry extends AuditFields { prev_hash: string; hash: string }

function sortKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) out[k] = (value as Record<string, unknown>)[k];
  return out;
}

/**
 * JSON with object keys sorted at every depth: the same value gives the same text whatever order
 * its keys were built in, and after a round trip through jsonb (which reorders keys).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, sortKeys);
}

/**
 * The canonical JSON of an entry's fields cut around the value of `seq`: `before + seq + after`
 * is `canonicalJson(fields)`. The database appends an entry in one statement that takes the next
 * seq and the previous hash itself (services/audit.ts), so it needs the text on either side.
 */
export function canonicalAroundSeq(fields: Omit<AuditFields, 'seq'>): { before: string; after: string } {
  const parts: string[] = [];
  let at = -1;
  const withSeq: Record<string, unknown> = { ...fields, seq: 0 };
  for (const k of Object.keys(withSeq).sort()) {
    if (k === 'seq') { at = parts.length; continue; }
    if (withSeq[k] !== undefined) parts.push(`${JSON.stringify(k)}:${canonicalJson(withSeq[k])}`);
  }
  const head = parts.slice(0, at).join(',');
  const tail = parts.slice(at).join(',');
  return { before: `{${head}${head ? ',' : ''}"seq":`, after: `${tail ? ',' : ''}${tail}}` };
}

/** sha256(prev_hash + canonical JSON of the fields), hex. */
export function entryHash(prevHash: string, fields: AuditFields): string {
  const own: AuditFields = {
    seq: fields.seq, created_at: fields.created_at, request_id: fields.request_id,
    admin_id: fields.admin_id, admin_username: fields.admin_username, token_prefix: fields.token_prefix,
    method: fields.method, path: fields.path, entity_type: fields.entity_type, entity_id: fields.entity_id,
    change: fields.change, config_version: fields.config_version, client_ip: fields.client_ip,
  };
  return createHash('sha256').update(prevHash).update(canonicalJson(own)).digest('hex');
}

/** The entry that follows `prev` (null: the first) with these fields. */
export function chainEntry(prev: Pick<AuditEntry, 'seq' | 'hash'> | null, fields: Omit<AuditFields, 'seq'>): AuditEntry {
  const own = { ...fields, seq: (prev?.seq ?? 0) + 1 };
  const prevHash = prev?.hash ?? GENESIS_HASH;
  return { ...own, prev_hash: prevHash, hash: entryHash(prevHash, own) };
}

export interface ChainProblem { first_invalid: number; reason: string }

/**
 * Checks one entry against the one before it (null: it should be the first). Returns the first
 * problem: a missing entry (a gap in `seq`), a broken link, or an entry whose content changed.
 */
export function checkEntry(prev: Pick<AuditEntry, 'seq' | 'hash'> | null, entry: AuditEntry): ChainProblem | null {
  const expected = (prev?.seq ?? 0) + 1;
  if (entry.seq !== expected) {
    return { first_invalid: expected, reason: `entry ${expected} is missing (deleted): the next stored entry is ${entry.seq}` };
  }
  if (entry.prev_hash !== (prev?.hash ?? GENESIS_HASH)) {
    return { first_invalid: entry.seq, reason: `entry ${entry.seq} does not link to entry ${expected - 1}: its prev_hash differs from that entry's hash` };
  }
  if (entry.hash !== entryHash(entry.prev_hash, entry)) {
    return { first_invalid: entry.seq, reason: `entry ${entry.seq} was modified: its content does not match its hash` };
  }
  return null;
}

export type ChainVerdict = { valid: true; entries: number } | ({ valid: false; entries: number } & ChainProblem);

/** Verifies entries in `seq` order, from the first; `entries` counts them all, `first_invalid` is the first problem. */
export function verifyChain(entries: Iterable<AuditEntry>): ChainVerdict {
  const v = new ChainVerifier();
  for (const e of entries) v.push(e);
  return v.verdict();
}

/** The same walk, fed an entry at a time (the log is read in pages). */
export class ChainVerifier {
  private prev: AuditEntry | null = null;
  private n = 0;
  private problem: ChainProblem | null = null;

  push(entry: AuditEntry): void {
    this.n++;
    if (this.problem) return;
    this.problem = checkEntry(this.prev, entry);
    this.prev = entry;
  }

  /** The last entry pushed. */
  get last(): AuditEntry | null { return this.prev; }

  /** Records a problem found outside the chain itself (its newest entries missing). */
  fail(problem: ChainProblem): void { this.problem ??= problem; }

  verdict(): ChainVerdict {
    return this.problem ? { valid: false, entries: this.n, ...this.problem } : { valid: true, entries: this.n };
  }
}
