// Config history in Postgres: one config_versions row per published version, its snapshot kept as
// the list of its gzip members (codec.ts, SealedSnapshot.parts), each member once in config_blocks.
// At 10,000 routes a snapshot is ~340 KB in ~130 members, and a one-route write changes one entity
// block and the small head and tail: storing the whole snapshot per version cost the CP a 680 KB
// hex parameter and Postgres ~7 ms of CPU per write (apply bench, 2026-12-01); storing the new
// members costs a few KB.
import { lt, sql } from 'drizzle-orm';
import { partDigest } from '@portico/shared';
import { rowsOf, type Db, type Executor } from '../db/index.ts';
import { configBlocks, configVersions } from '../db/schema.ts';

/** Names the advisory lock that serializes stores across CPs (any constant; migrations use another). */
const STORE_LOCK = 7_310_512;

export interface VersionRow {
  version: number; hash: string; built_at: number; size_bytes: number;
  changed_by: string[] | null; summary: string | null;
}

/**
 * Stores version `row`, whose snapshot is the concatenation of `parts`, and keeps the newest
 * `history` versions: inserts the parts config_blocks lacks, the version, then removes older
 * versions and every block that only they held. Stores run one at a time across CPs (an advisory
 * lock held to commit), so no removal falls between another store's check for a block and its
 * version referring to it. A version already stored (another CP built it) is left as it is.
 */
export async function storeVersion(db: Db, row: VersionRow, parts: readonly Uint8Array[], history: number): Promise<void> {
  const list = parts.map(partDigest);
  await db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${STORE_LOCK})`);
    const unique = [...new Set(list)];
    const held = new Set(rowsOf<{ digest: string }>(await tx.execute(
      sql`SELECT digest FROM ${configBlocks} WHERE digest = ANY(${sql.param(unique)}::text[])`)).map((r) => r.digest));
    const missing = new Map<string, Buffer>();
    list.forEach((d, i) => { if (!held.has(d)) missing.set(d, Buffer.from(parts[i].buffer, parts[i].byteOffset, parts[i].byteLength)); });
    if (missing.size > 0) await tx.insert(configBlocks).values([...missing].map(([digest, bytes]) => ({ digest, bytes }))).onConflictDoNothing();
    const stored = await tx.insert(configVersions).values({ ...row, parts: list }).onConflictDoNothing().returning({ version: configVersions.version });
    const removed = await tx.delete(configVersions)
      .where(lt(configVersions.version, sql`(SELECT min(version) FROM (SELECT version FROM ${configVersions} ORDER BY version DESC LIMIT ${history}) AS keep)`))
      .returning({ parts: configVersions.parts });
    // Blocks that may no longer be referred to: those of the removed versions, and this store's own
    // when its version was already there. Those this version refers to stay.
    const orphans = new Set<string>();
    for (const r of removed) for (const d of r.parts ?? []) orphans.add(d);
    if (stored.length === 0) for (const d of missing.keys()) orphans.add(d);
    else for (const d of unique) orphans.delete(d);
    if (orphans.size > 0) {
      await tx.execute(sql`DELETE FROM ${configBlocks} AS b WHERE b.digest = ANY(${sql.param([...orphans])}::text[])
        AND NOT EXISTS (SELECT 1 FROM ${configVersions} AS v WHERE b.digest = ANY(v.parts))`);
    }
    // Read committed whatever the server's default: each statement after the lock sees what the
    // store before it committed (a repeatable-read view would date from before the wait).
  }, { isolationLevel: 'read committed' });
}

/**
 * The snapshot bytes of version `v` as published, or null when it is not kept. A version stored as
 * parts is joined in Postgres, in one statement (one view of the tables: a concurrent store cannot
 * remove a block between reading the version and its blocks). Throws when a block is missing.
 */
export async function versionBytes(ex: Executor, v: number): Promise<Uint8Array | null> {
  const [row] = rowsOf<{ snapshot: Uint8Array | null; wanted: number | null; found: number | null; joined: Uint8Array | null }>(await ex.execute(sql`
    SELECT v.snapshot, cardinality(v.parts) AS wanted, j.found, j.joined
    FROM ${configVersions} AS v
    LEFT JOIN LATERAL (
      SELECT count(*)::int AS found, string_agg(b.bytes, ''::bytea ORDER BY p.at) AS joined
      FROM unnest(v.parts) WITH ORDINALITY AS p(digest, at) JOIN ${configBlocks} AS b ON b.digest = p.digest
    ) AS j ON v.parts IS NOT NULL
    WHERE v.version = ${v}`));
  if (!row) return null;
  if (row.snapshot) return row.snapshot;
  if (row.wanted === null || Number(row.found) !== Number(row.wanted) || !row.joined) {
    throw new Error(`config version ${v}: ${Number(row.wanted ?? 0) - Number(row.found ?? 0)} of its ${row.wanted ?? 0} blocks are missing from config_blocks`);
  }
  return row.joined;
}
