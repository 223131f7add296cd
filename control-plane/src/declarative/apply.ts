// Replacing the whole configuration in one transaction: one config version, one audit entry, and
// only the rows that change are written (creates parents-first, then updates, then deletes
// children-first, so a route moves to its renamed service before the old one goes).
import { inArray, sql, TransactionRollbackError } from 'drizzle-orm';
import type { Db, Executor, Tx } from '../db/index.ts';
import { ENTITY_BY_NAME, type EntityDef } from '../services/entity.ts';
import { bumpVersion, entityToRow, lockConfig, mapDbError, rowToEntity, type Entity } from '../services/store.ts';
import { appendAudit, checkTagScope, type WriteContext } from '../services/audit.ts';
import { ENTITY_ORDER } from './file.ts';
import { diffStates, emptyState, planSize, planSummary, type Plan, type State } from './state.ts';

/** Rows per statement: bounds one statement's JSON parameter (10,000 routes are a few MB). */
const CHUNK = 2_000;

/** Every entity in the store, in stored form. */
export async function loadState(ex: Executor): Promise<State> {
  const state = emptyState();
  for (const type of ENTITY_ORDER) {
    const def = ENTITY_BY_NAME.get(type)!;
    const rows = await ex.select().from(def.table);
    state[type] = rows.map((r) => rowToEntity(def, r as Record<string, unknown>));
  }
  return state;
}

/**
 * Many rows in one statement: they travel as one JSON parameter that Postgres expands into rows of
 * the table's own type (jsonb_populate_recordset: JSON arrays become arrays, objects jsonb, null
 * NULL). Drizzle's multi-row insert binds every value separately; at 10,000 routes it measured
 * 2.7 s of a 3.2 s import, almost all of it building and binding ~230,000 parameters.
 */
const rowsOf = (def: EntityDef, rows: Record<string, unknown>[]) => sql`jsonb_populate_recordset(NULL::${def.table}, ${JSON.stringify(rows)}::jsonb)`;

async function insertRows(tx: Tx, def: EntityDef, rows: Record<string, unknown>[]): Promise<void> {
  await tx.execute(sql`INSERT INTO ${def.table} SELECT * FROM ${rowsOf(def, rows)}`);
}

/** Rows with the same columns in one UPDATE (a column a row lacks, such as a sealed key, stays). */
async function updateRows(tx: Tx, def: EntityDef, rows: Record<string, unknown>[]): Promise<void> {
  const columns = Object.keys(rows[0]).filter((c) => c !== 'id');
  const set = sql.join(columns.map((c) => sql`${sql.identifier(c)} = s.${sql.identifier(c)}`), sql`, `);
  await tx.execute(sql`UPDATE ${def.table} AS t SET ${set} FROM ${rowsOf(def, rows)} AS s WHERE t.id = s.id`);
}

async function inChunks<T>(def: EntityDef, items: T[], write: (chunk: T[]) => Promise<unknown>, entityOf?: (t: T) => Entity): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) {
    const chunk = items.slice(i, i + CHUNK);
    try { await write(chunk); } catch (err) { mapDbError(def, err, entityOf?.(chunk[0])); }
  }
}

async function writePlan(tx: Tx, plan: Plan): Promise<void> {
  for (const type of ENTITY_ORDER) {
    const def = ENTITY_BY_NAME.get(type)!;
    await inChunks(def, plan.create[type], (chunk) => insertRows(tx, def, chunk.map((e) => entityToRow(def, e))), (e) => e);
  }
  for (const type of ENTITY_ORDER) {
    const def = ENTITY_BY_NAME.get(type)!;
    const byColumns = new Map<string, { row: Record<string, unknown>; entity: Entity }[]>();
    for (const { after } of plan.update[type]) {
      const row = entityToRow(def, after);
      const k = Object.keys(row).join(',');
      if (!byColumns.has(k)) byColumns.set(k, []);
      byColumns.get(k)!.push({ row, entity: after });
    }
    for (const group of byColumns.values()) await inChunks(def, group, (chunk) => updateRows(tx, def, chunk.map((g) => g.row)), (g) => g.entity);
  }
  for (const type of [...ENTITY_ORDER].reverse()) {
    const def = ENTITY_BY_NAME.get(type)!;
    await inChunks(def, plan.delete[type].map((e) => e.id), (ids) => tx.delete(def.table).where(inArray(def.table.id, ids)));
  }
}

export interface ReplaceOptions {
  /** Only entities carrying all of these are the file's (the rest are left alone). */
  selectTags?: readonly string[];
  /** Answer the plan, write nothing. */
  dryRun?: boolean;
  /** Compare and write timestamps too (a rollback). */
  exact?: boolean;
  /** What the audit entry calls this write (`config`, `rollback to 7`). */
  reason?: string;
}

export interface ReplaceResult { plan: Plan; summary: string; version: number | null }

/**
 * Make the store equal `desiredOf(current)`: the desired state is computed under the config lock
 * from what is stored right now, so ids are matched against the truth the write changes.
 */
export async function replaceConfig(db: Db, ctx: WriteContext, desiredOf: (current: State) => State, opts: ReplaceOptions = {}): Promise<ReplaceResult> {
  let outcome: ReplaceResult | undefined;
  try {
    await db.transaction(async (tx) => {
      if (!opts.dryRun) await lockConfig(tx);
      const current = await loadState(tx);
      const plan = diffStates(current, desiredOf(current), opts.selectTags, opts.exact);
      const summary = planSummary(plan);
      outcome = { plan, summary, version: null };
      if (opts.dryRun || planSize(plan) === 0) tx.rollback();
      for (const type of ENTITY_ORDER) {
        for (const e of plan.create[type]) checkTagScope(ctx, type, null, e);
        for (const u of plan.update[type]) checkTagScope(ctx, type, u.before, u.after);
        for (const e of plan.delete[type]) checkTagScope(ctx, type, e, null);
      }
      const version = await bumpVersion(tx);
      await writePlan(tx, plan);
      await appendAudit(tx, ctx, {
        entity_type: 'config', entity_id: String(version), config_version: version,
        entity: { reason: opts.reason ?? 'config', summary, select_tags: opts.selectTags ?? [] },
      });
      outcome.version = version;
    });
  } catch (err) {
    if (!(err instanceof TransactionRollbackError)) throw err;
  }
  return outcome!;
}

export type { Entity };
