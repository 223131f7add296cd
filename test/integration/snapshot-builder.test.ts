// The CP's snapshot builder reads again only rows whose version (xmin) changed since its last
// build: through a chain of inserts, updates and deletes on real Postgres and on the embedded
// store, every cached build equals a build from scratch (hash, config, bytes decoded), rows not
// written keep their entity objects, and written rows do not.
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { decodeSnapshot } from '@portico/shared';
import type { Database } from '../../control-plane/src/db/index.ts';
import { routes, services, acls, consumers } from '../../control-plane/src/db/schema.ts';
import { buildSnapshot, SnapshotBuilder, type BuiltSnapshot } from '../../control-plane/src/snapshot/builder.ts';
import { onEachStore, route, service } from '../harness/stores.ts';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => {}); });


/** What matters of a build: the hash, the config and the bytes' content (built_at aside). */
function same(cached: BuiltSnapshot, fresh: BuiltSnapshot, step: string): void {
  assert.equal(cached.snapshot.hash, fresh.snapshot.hash, step);
  assert.deepEqual(cached.snapshot.config, fresh.snapshot.config, step);
  const { built_at: _a, ...a } = decodeSnapshot(cached.bytes);
  const { built_at: _b, ...b } = decodeSnapshot(fresh.bytes);
  assert.deepEqual(a, b, step);
  // Every list in id order: the hash's order, so a DP hashes the bytes in place.
  for (const [name, list] of Object.entries(cached.snapshot.config)) {
    const ids = (list as { id: string }[]).map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort(), `${step}: ${name} in id order`);
  }
}

async function chain(database: Database): Promise<void> {
  const { db } = database;
  const svcs = Array.from({ length: 3 }, (_, i) => service(i));
  await db.insert(services).values(svcs);
  const rts = Array.from({ length: 40 }, (_, i) => route(i, svcs[i % 3].id));
  await db.insert(routes).values(rts);
  const builder = new SnapshotBuilder();
  let prev = await builder.build(db);
  same(prev, await buildSnapshot(db), 'first build');
  assert.equal(prev.snapshot.config.routes.length, 40);

  let n = 40;
  const byId = (b: BuiltSnapshot) => new Map(b.snapshot.config.routes.map((r) => [r.id, r]));
  for (let step = 0; step < 24; step++) {
    const live = [...byId(prev).keys()];
    const target = live[(step * 7) % live.length];
    let touched: string | null = target;
    switch (step % 4) {
      case 0: await db.update(routes).set({ paths: [`/edited-${step}`], updated_at: 2 }).where(eq(routes.id, target)); break;
      case 1: await db.delete(routes).where(eq(routes.id, target)); touched = null; break;
      case 2: { const r = route(n++, svcs[step % 3].id); await db.insert(routes).values(r); touched = r.id; break; }
      case 3: // the same content written again is a new row version: read again, equal all the same
        await db.update(routes).set({ updated_at: 1 }).where(eq(routes.id, target)); break;
    }
    const next = await builder.build(db);
    same(next, await buildSnapshot(db), `step ${step}`);
    const before = byId(prev);
    for (const [id, r] of byId(next)) {
      if (id === touched) assert.notEqual(r, before.get(id), `step ${step}: the written row is read again`);
      else assert.equal(r, before.get(id), `step ${step}: an untouched row keeps its entity`);
    }
    assert.equal(next.snapshot.config.services[0], prev.snapshot.config.services.find((s) => s.id === next.snapshot.config.services[0].id));
    prev = next;
  }

  // Several rows at once, at both ends of the id order and between: the first deleted, the last
  // edited, two inserted (wherever their ids fall); every other row keeps its entity.
  {
    const ids = prev.snapshot.config.routes.map((r) => r.id);
    await db.delete(routes).where(eq(routes.id, ids[0]));
    await db.update(routes).set({ paths: ['/edited-last'], updated_at: 3 }).where(eq(routes.id, ids[ids.length - 1]));
    const added = [route(n++, svcs[0].id), route(n++, svcs[1].id)];
    await db.insert(routes).values(added);
    const next = await builder.build(db);
    same(next, await buildSnapshot(db), 'several rows at once');
    const before = byId(prev);
    const touched = new Set([ids[ids.length - 1], ...added.map((r) => r.id)]);
    assert.equal(next.snapshot.config.routes.length, ids.length + 1);
    for (const [id, r] of byId(next)) {
      if (touched.has(id)) assert.notEqual(r, before.get(id), `${id} is read again`);
      else assert.equal(r, before.get(id), `${id} keeps its entity`);
    }
    prev = next;
  }

  // Other tables, and many rows at once (read by one scan rather than an id list).
  const consumer = { id: randomUUID(), created_at: 1, updated_at: 1, username: 'alice' };
  await db.insert(consumers).values(consumer);
  await db.insert(acls).values({ id: randomUUID(), created_at: 1, group: 'admins', consumer_id: consumer.id, cache_key: `acls:${consumer.id}:admins` });
  await db.update(routes).set({ regex_priority: 3 });
  const bulk = await builder.build(db);
  same(bulk, await buildSnapshot(db), 'bulk update and other tables');
  assert.ok(bulk.snapshot.config.routes.every((r) => r.regex_priority === 3));
  assert.equal(bulk.snapshot.config.acls.length, 1);
  await db.delete(routes);
  const empty = await builder.build(db);
  same(empty, await buildSnapshot(db), 'every route deleted');
  assert.equal(empty.snapshot.config.routes.length, 0);
}

describe('snapshot builder: rows read again only when their version changed', () => {
  onEachStore(cleanups, chain);
});
