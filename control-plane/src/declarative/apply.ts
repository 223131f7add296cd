// Replacing the whole configuration in one transaction: one config version, one audit entry, and
// only the rows that change are written (creates parents-first, then updates, then deletes
// children-first, so a route moves to its renamed service before the old one goes).
import { eq, inArray, TransactionRollbackError } from 'drizzle-orm';
import type { Db, Executor, Tx } from '../db/index.ts';
import { ENTITY_BY_NAME } from '../services/entity.ts';
import { bumpVersion, entityToRow, lockConfig, mapDbError, rowToEntity, type Entity } from '../services/store.ts';
import { appendAudit, checkTagScope, type WriteContext } from '../services/audit.ts';
import { ENTITY_ORDER } from './file.ts';
import { diffStates, emptyState, planSize, planSummary, type Plan, type State } from './state.ts';

/** Rows per INSERT/DELETE statement: well under Postgres's 65,535 bind parameters for any table. */
const CHUNK = 500;

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

async function writePlan(tx: Tx, plan: Plan): Promise<void> {
  for (const type of ENTITY_ORDER) {
    const def = ENTITY_BY_NAME.get(type)!;
    const rows = plan.create[type];
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK);
      try { await tx.insert(def.table).values(chunk.map((e) => entityToRow(def, e))); } catch (err) { mapDbError(def, err, chunk[0]); }
    }
  }
  for (const type of ENTITY_ORDER) {
    const def = ENTITY_BY_NAME.get(type)!;
    for (const { after } of plan.update[type]) {
      try { await tx.update(def.table).set(entityToRow(def, after)).where(eq(def.table.id, after.id)); } catch (err) { mapDbError(def, err, after); }
    }
  }
  for (const type of [...ENTITY_ORDER].reverse()) {
    const def = ENTITY_BY_NAME.get(type)!;
    const ids = plan.delete[type].map((e) => e.id);
    for (let i = 0; i < ids.length; i += CHUNK) {
      try { await tx.delete(def.table).where(inArray(def.table.id, ids.slice(i, i + CHUNK))); } catch (err) { mapDbError(def, err); }
    }
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
