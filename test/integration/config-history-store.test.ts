// Config history stored as blocks (control-plane/src/snapshot/history.ts): on real Postgres and on
// the embedded store, through a chain of one-route writes at 2,000 routes, every kept version reads
// back as the very bytes published, a write stores only the few members it changed, and the blocks
// table holds exactly the members of the kept versions (none missing, none left over). Also: a
// version stored twice, a version from before the blocks table, and a block gone missing.
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { rowsOf, type Database } from '../../control-plane/src/db/index.ts';
import { configBlocks, configVersions, routes, services } from '../../control-plane/src/db/schema.ts';
import { SnapshotBuilder, type BuiltSnapshot } from '../../control-plane/src/snapshot/builder.ts';
import { storeVersion, versionBytes } from '../../control-plane/src/snapshot/history.ts';
import { onEachStore, route, service } from '../harness/stores.ts';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => {}); });

const HISTORY = 4;

const row = (b: BuiltSnapshot, version = b.snapshot.version) => ({
  version, hash: b.snapshot.hash, built_at: b.snapshot.built_at, size_bytes: b.bytes.byteLength, changed_by: null, summary: null,
});

async function blocks(database: Database): Promise<Map<string, number>> {
  const rows = rowsOf<{ digest: string; size: number }>(await database.db.execute(sql`SELECT digest, octet_length(bytes) AS size FROM ${configBlocks}`));
  return new Map(rows.map((r) => [r.digest, Number(r.size)]));
}

/** Every block a kept version refers to is there, and no other. */
async function exactlyReferenced(database: Database, step: string): Promise<void> {
  const kept = await database.db.select({ parts: configVersions.parts }).from(configVersions);
  const referenced = new Set(kept.flatMap((k) => k.parts ?? []));
  assert.deepEqual([...(await blocks(database)).keys()].sort(), [...referenced].sort(), step);
}

async function chain(database: Database): Promise<void> {
  const { db } = database;
  const svc = service(0);
  await db.insert(services).values(svc);
  const rts = Array.from({ length: 2000 }, (_, i) => route(i, svc.id));
  await db.insert(routes).values(rts);
  const builder = new SnapshotBuilder();
  const published = new Map<number, Uint8Array>();
  let version = 1;
  const build = async () => {
    const b = await builder.build(db);
    return { ...b, snapshot: { ...b.snapshot, version } };
  };

  const first = await build();
  assert.ok(first.parts.length > 8, `2,000 routes are written in several members (${first.parts.length})`);
  await storeVersion(db, row(first), first.parts, HISTORY);
  published.set(version, first.bytes);
  await exactlyReferenced(database, 'first store');

  for (let step = 0; step < 10; step++) {
    version++;
    await db.update(routes).set({ paths: [`/edited-${step}`], updated_at: 2 }).where(eq(routes.id, rts[(step * 97) % rts.length].id));
    const built = await build();
    const before = await blocks(database);
    await storeVersion(db, row(built), built.parts, HISTORY);
    published.set(version, built.bytes);
    const after = await blocks(database);
    const added = [...after.keys()].filter((d) => !before.has(d));
    const fresh = built.parts.map((p) => hash('sha256', p, 'hex')).filter((d) => !before.has(d));
    // Only the members the table lacked: the changed entity block, the head (built_at) and the tail (hash, version).
    assert.deepEqual(added.sort(), [...new Set(fresh)].sort(), `step ${step}`);
    assert.ok(added.length <= 3 && added.length < built.parts.length / 4, `step ${step}: ${added.length} of ${built.parts.length} members stored`);
    await exactlyReferenced(database, `step ${step}`);
    for (const [v, bytes] of published) {
      const read = await versionBytes(db, v);
      if (v > version - HISTORY) assert.ok(read && Buffer.from(read).equals(Buffer.from(bytes)), `step ${step}: version ${v} reads back as published`);
      else assert.equal(read, null, `step ${step}: version ${v} is no longer kept`);
    }
  }

  // The same version stored again (another CP built it, at another time): the first stays, and the
  // members only the second had are not left behind.
  await new Promise((r) => setTimeout(r, 5));
  const again = await build();
  assert.notDeepEqual(Buffer.from(again.bytes), Buffer.from(published.get(version)!), 'another built_at: another head member');
  await storeVersion(db, row(again), again.parts, HISTORY);
  assert.ok(Buffer.from((await versionBytes(db, version))!).equals(Buffer.from(published.get(version)!)));
  await exactlyReferenced(database, 'a version stored twice');

  // A version stored before config_blocks existed: its bytes in the row.
  const legacy = Buffer.from(published.get(version)!);
  await db.insert(configVersions).values({ ...row(first, 0), snapshot: legacy });
  assert.ok(Buffer.from((await versionBytes(db, 0))!).equals(legacy));
  await assert.rejects(db.insert(configVersions).values({ ...row(first, -1) }), (err: Error) => /config_versions_stored/.test(`${err.message} ${(err.cause as Error | undefined)?.message}`));

  // A block gone: the version says so instead of answering a truncated snapshot.
  const [{ parts }] = await db.select({ parts: configVersions.parts }).from(configVersions).where(eq(configVersions.version, version));
  await db.delete(configBlocks).where(eq(configBlocks.digest, parts![1]));
  await assert.rejects(versionBytes(db, version), new RegExp(`config version ${version}: 1 of its ${parts!.length} blocks are missing`));
}

describe('config history stored as blocks', () => {
  onEachStore(cleanups, chain);
});
