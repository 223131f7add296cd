// Transactional reads and writes of admin entities, with Kong's semantics and errors
// (reference/kong-compat.md §1.3, §1.6, §1.7). Every write bumps the config version in the same
// transaction, so a committed change can never miss a snapshot, and appends its audit entry there
// too (audit.ts), so a committed change can never miss its record either.
import { randomUUID } from 'node:crypto';
import { and, arrayContains, arrayOverlaps, asc, eq, gt, sql, TransactionRollbackError, type SQL } from 'drizzle-orm';
import {
  AdminError, ErrorCode, REQUIRED, UUID_RE, luaKey, schemaViolation, tagError, violationsFromZod, type Violation,
} from '@portico/shared';
import type { Db, Executor, Tx } from '../db/index.ts';
import { clientError, pgErrorOf, SQLSTATE } from '../db/errors.ts';
import { checkIdReferences, missingReference } from './certificates.ts';
import { configState } from '../db/schema.ts';
import { ENTITY_BY_NAME, type EntityDef } from './entity.ts';
import { auditedWrite, type WriteContext } from './audit.ts';

export type Entity = Record<string, unknown> & { id: string };

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
const MAX_TAGS = 5;

const nowSeconds = () => Math.floor(Date.now() / 1000);

const fkColumnsOf = new WeakMap<EntityDef, Set<string>>();
/** Fields stored as `<field>_id` (computed once per definition: every row conversion asks). */
export function fkColumns(def: EntityDef): Set<string> {
  let fks = fkColumnsOf.get(def);
  if (!fks) fkColumnsOf.set(def, fks = new Set(Object.keys(def.schema.shape).filter((k) => `${k}_id` in def.table)));
  return fks;
}

export function rowToEntity(def: EntityDef, row: Record<string, unknown>): Entity {
  const fks = fkColumns(def);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(def.schema.shape)) {
    if (fks.has(key)) {
      const id = row[`${key}_id`];
      out[key] = id ? { id } : null;
    } else {
      out[key] = row[key] ?? null;
    }
  }
  return out as Entity;
}

/**
 * Columns an entity carries beside its fields (def.sealedColumns): a symbol, so they survive
 * copies (`{ ...entity }`) yet never reach JSON, a hash or a snapshot.
 */
export const SEALED = Symbol('sealed columns');

export function entityToRow(def: EntityDef, entity: Record<string, unknown>): Record<string, unknown> {
  const fks = fkColumns(def);
  const row: Record<string, unknown> = {};
  for (const key of Object.keys(def.schema.shape)) {
    if (fks.has(key)) row[`${key}_id`] = (entity[key] as { id?: string } | null)?.id ?? null;
    else row[key] = entity[key];
  }
  const sealed = (entity as { [SEALED]?: Record<string, unknown> })[SEALED];
  return { ...row, ...def.rowExtras?.(entity), ...sealed };
}

/** An entity as admin reads answer it (rowToEntity plus what def.present adds). */
function presented(def: EntityDef, row: Record<string, unknown>): Entity {
  const e = rowToEntity(def, row);
  return def.present ? def.present(row, e) as Entity : e;
}

/** Set created_at/updated_at where the entity has them (credentials have no updated_at). */
export function stamp(def: EntityDef, obj: Record<string, unknown>, createdAt: number, now: number): Record<string, unknown> {
  const shape = def.schema.shape;
  const out = { ...obj };
  if ('created_at' in shape) out.created_at = createdAt;
  if ('updated_at' in shape) out.updated_at = now;
  return out;
}

/**
 * Bump the config version; also takes the row lock that orders concurrent writers. Writes that
 * read an entity before changing it take it first, so what they read (and audit as "before", and
 * check tags on) is what they change.
 */
export async function bumpVersion(tx: Tx): Promise<number> {
  const [row] = await tx.update(configState).set({ version: sql`${configState.version} + 1` })
    .where(eq(configState.id, 1)).returning({ version: configState.version });
  return row.version;
}

/** The same lock for writes that change no config (admins): returns the current version. */
export async function lockConfig(tx: Tx): Promise<number> {
  const [row] = await tx.select({ version: configState.version }).from(configState).where(eq(configState.id, 1)).for('update');
  return row.version;
}

// ---------------------------------------------------------------------------------------------
// Reads

/** Columns a lookup is confined to: `{ upstream_id: "…" }` finds a target only under that upstream. */
export type Within = Record<string, string>;

async function findRow(ex: Executor, def: EntityDef, key: string, within: Within = {}): Promise<Record<string, unknown> | undefined> {
  let column = UUID_RE.test(key) ? def.table.id : def.endpointKey ? def.table[def.endpointKey] : undefined;
  let value = key;
  if (!UUID_RE.test(key) && def.lookupKey) {
    const l = def.lookupKey(key);
    column = def.table[l.column]; value = l.value;
  }
  if (!column) return undefined;
  const conds = [eq(column, value), ...Object.entries(within).map(([col, v]) => eq(def.table[col], v))];
  const rows = await ex.select().from(def.table).where(and(...conds)).limit(1);
  return rows[0] as Record<string, unknown> | undefined;
}

export async function getEntity(ex: Executor, def: EntityDef, key: string, within?: Within): Promise<Entity | undefined> {
  const row = await findRow(ex, def, key, within);
  if (!row) return undefined;
  const entity = presented(def, row);
  await def.decorate?.(ex, [entity]);
  return entity;
}

export async function requireEntity(ex: Executor, def: EntityDef, key: string): Promise<Entity> {
  const e = await getEntity(ex, def, key);
  if (!e) throw AdminError.message(404, 'Not found');
  return e;
}

export interface ListQuery {
  size?: string;
  offset?: string;
  tags?: string;
  /** Restrict to children of one parent: `{ service_id: "…" }`, or the entity's exact-match filters. */
  where?: Record<string, string>;
  /** Further conditions an entity derives from its own query parameters (`listConditions`). */
  conditions?: SQL[];
}

export interface Page {
  data: Entity[];
  offset?: string;
}

export function parseSize(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_PAGE_SIZE;
  const n = Number(raw);
  if (raw.trim() === '' || Number.isNaN(n)) throw AdminError.of(400, ErrorCode.INVALID_SIZE, 'size must be a number');
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw AdminError.of(400, ErrorCode.INVALID_SIZE, `size must be an integer between 1 and ${MAX_PAGE_SIZE}`);
  }
  return n;
}

function parseOffset(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const decoded = /^[A-Za-z0-9+/=_-]+$/.test(raw) ? Buffer.from(raw, 'base64url').toString('utf8') : '';
  if (!UUID_RE.test(decoded)) {
    throw AdminError.of(400, ErrorCode.INVALID_OFFSET, `'${raw}' is not a valid offset: bad base64 encoding`);
  }
  return decoded;
}

function parseTags(def: EntityDef, raw: string | undefined): SQL | undefined {
  if (raw === undefined) return undefined;
  if (raw === '') {
    throw AdminError.of(400, ErrorCode.INVALID_OPTIONS, 'invalid option (tags: cannot be null)', { options: { tags: 'cannot be null' } });
  }
  const and = raw.includes(',');
  const or = raw.includes('/');
  if (and && or) {
    throw AdminError.of(400, ErrorCode.INVALID_OPTIONS, 'invalid option (tags: invalid filter syntax)', { options: { tags: 'invalid filter syntax' } });
  }
  const list = raw.split(and ? ',' : '/');
  if (list.length > MAX_TAGS) {
    throw AdminError.of(400, ErrorCode.INVALID_OPTIONS, `invalid option (tags: cannot query more than ${MAX_TAGS} tags)`, { options: { tags: `cannot query more than ${MAX_TAGS} tags` } });
  }
  if (list.some((t) => tagError(t) !== null)) {
    throw AdminError.of(400, ErrorCode.INVALID_OPTIONS, 'invalid option (tags: invalid filter syntax)', { options: { tags: 'invalid filter syntax' } });
  }
  return or ? arrayOverlaps(def.table.tags, list) : arrayContains(def.table.tags, list);
}

export async function listEntities(ex: Executor, def: EntityDef, q: ListQuery): Promise<Page> {
  const size = parseSize(q.size);
  const after = parseOffset(q.offset);
  const conds: SQL[] = [];
  const tagCond = parseTags(def, q.tags);
  if (tagCond) conds.push(tagCond);
  if (after) conds.push(gt(def.table.id, after));
  for (const [col, value] of Object.entries(q.where ?? {})) conds.push(eq(def.table[col], value));
  conds.push(...(q.conditions ?? []));
  const rows = await ex.select().from(def.table).where(conds.length ? and(...conds) : undefined)
    .orderBy(asc(def.table.id)).limit(size + 1);
  const data = rows.slice(0, size).map((r) => presented(def, r as Record<string, unknown>));
  await def.decorate?.(ex, data);
  const page: Page = { data };
  if (rows.length > size) page.offset = Buffer.from(data[data.length - 1].id).toString('base64url');
  return page;
}

// ---------------------------------------------------------------------------------------------
// Writes

interface Validated { entity: Entity; reveal?: Record<string, unknown> }

/** An entity's write validation as a value: the stored entity, or every violation found. */
export function checkEntity(def: EntityDef, candidate: Record<string, unknown>): ({ ok: true } & Validated) | { ok: false; violations: Violation[] } {
  let input = candidate;
  let reveal: Record<string, unknown> | undefined;
  if (def.expandInput) {
    const r = def.expandInput(candidate);
    if (!r.ok) return r;
    input = r.value; reveal = r.reveal;
  }
  const parsed = def.schema.safeParse(input);
  if (!parsed.success) return { ok: false, violations: violationsFromZod(parsed.error) };
  let entity = parsed.data as Entity;
  if (def.finalize) {
    const f = def.finalize(entity);
    if (f.violations.length) return { ok: false, violations: f.violations };
    entity = f.entity as Entity;
  }
  if (reveal && def.sealedColumns) (entity as { [SEALED]?: Record<string, unknown> })[SEALED] = def.sealedColumns(reveal);
  return { ok: true, entity, reveal };
}

function validate(def: EntityDef, candidate: Record<string, unknown>): Validated {
  const r = checkEntity(def, candidate);
  if (!r.ok) throw schemaViolation(r.violations);
  return r;
}

/** The response body of a write: the stored entity plus what is shown once (a generated key). */
const answer = (v: Validated): Entity => (v.reveal ? { ...v.entity, ...v.reveal } : v.entity);

/** The entity's own follow-up writes (a certificate's SNIs), then the answer with computed fields. */
async function finishWrite(tx: Tx, def: EntityDef, v: Validated, input: Record<string, unknown>): Promise<Entity> {
  await def.afterWrite?.(tx, v.entity, input);
  const out = answer(v);
  await def.decorate?.(tx, [out]);
  return out;
}

/** Resolve `{ name: "x" }` foreign references to `{ id }`, and check every reference exists (code 4 / 13). */
async function resolveForeignKeys(ex: Executor, def: EntityDef, input: Record<string, unknown>): Promise<void> {
  for (const fk of def.foreignKeys) {
    const ref = input[fk.field];
    if (ref == null || typeof ref !== 'object' || Array.isArray(ref)) continue;
    const parentDef = ENTITY_BY_NAME.get(fk.entity)!;
    const r = ref as Record<string, unknown>;
    if (r.id === undefined && parentDef.endpointKey && typeof r[parentDef.endpointKey] === 'string' && Object.keys(r).length === 1) {
      const parent = await getEntity(ex, parentDef, r[parentDef.endpointKey] as string);
      if (!parent) {
        const keyText = luaKey({ [parentDef.endpointKey]: r[parentDef.endpointKey] });
        throw AdminError.of(400, ErrorCode.FOREIGN_KEYS_UNRESOLVED,
          `foreign key unresolved (${fk.field}.${parentDef.endpointKey}: the foreign key cannot be resolved with '${keyText}' for an existing '${fk.entity}' entity)`,
          { fields: { [fk.field]: { [parentDef.endpointKey]: `the foreign key cannot be resolved with '${keyText}' for an existing '${fk.entity}' entity` } } });
      }
      input[fk.field] = { id: parent.id };
    }
  }
}

async function checkForeignKeysExist(ex: Executor, def: EntityDef, entity: Entity): Promise<void> {
  const missing = def.foreignKeys.filter((fk) => fk.required && entity[fk.field] == null);
  if (missing.length) throw schemaViolation(missing.map((fk) => ({ path: [fk.field], message: REQUIRED })));
  for (const fk of def.foreignKeys) {
    const ref = entity[fk.field] as { id: string } | null;
    if (!ref) continue;
    const parentDef = ENTITY_BY_NAME.get(fk.entity)!;
    if (!(await findRow(ex, parentDef, ref.id))) throw missingReference([fk.field], fk.entity, ref.id);
  }
  if (def.idReferences) await checkIdReferences(ex, def.idReferences(entity));
  await def.checkReferences?.(ex, entity);
}

/**
 * Turn a database error into Kong's error: unique violations by the entity's own rules, the rest
 * by SQLSTATE (db/errors.ts); an error that is not the client's is rethrown (a 500).
 */
export function mapDbError(def: EntityDef, err: unknown, entity?: Entity): never {
  const pg = pgErrorOf(err);
  if (pg?.code === SQLSTATE.UNIQUE_VIOLATION && entity) {
    const prefix = `${def.name}_`;
    const column = pg.constraint?.startsWith(prefix) && pg.constraint.endsWith('_unique')
      ? pg.constraint.slice(prefix.length, -'_unique'.length) : undefined;
    const custom = column ? def.uniqueError?.(column, entity) : undefined;
    if (custom) throw AdminError.of(409, ErrorCode.UNIQUE_VIOLATION, custom.message, { fields: custom.fields });
    if (pg.constraint === `${def.name}_pkey`) {
      throw AdminError.of(400, ErrorCode.PRIMARY_KEY_VIOLATION, `primary key violation on key '${luaKey({ id: entity.id })}'`, { fields: { id: entity.id } });
    }
    if (column) {
      throw AdminError.of(409, ErrorCode.UNIQUE_VIOLATION, `UNIQUE violation detected on '${luaKey({ [column]: entity[column] })}'`, { fields: { [column]: entity[column] } });
    }
  }
  throw clientError(err, def.name) ?? err;
}

function stripServerFields(input: Record<string, unknown>): Record<string, unknown> {
  const { created_at: _c, updated_at: _u, ...rest } = input;
  return rest;
}

export interface WriteResult { entity: Entity; version: number }

export async function createEntity(db: Db, ctx: WriteContext, def: EntityDef, input: Record<string, unknown>): Promise<WriteResult> {
  return db.transaction(async (tx) => {
    const body = stripServerFields(input);
    await resolveForeignKeys(tx, def, body);
    const now = nowSeconds();
    const v = validate(def, stamp(def, { ...body, id: body.id ?? randomUUID() }, now, now));
    const entity = v.entity;
    await checkForeignKeysExist(tx, def, entity);
    const version = await bumpVersion(tx);
    try {
      await auditedWrite(tx, ctx, def.name, null, entity, version, tx.insert(def.table).values(entityToRow(def, entity)));
    } catch (err) { mapDbError(def, err, entity); }
    return { entity: await finishWrite(tx, def, v, body), version };
  });
}

/** PUT: create or replace the whole entity at `key` (an id, or the endpoint key). */
export async function upsertEntity(db: Db, ctx: WriteContext, def: EntityDef, key: string, input: Record<string, unknown>, fixed: Record<string, unknown> = {}, within?: Within): Promise<WriteResult> {
  return db.transaction(async (tx) => {
    const version = await bumpVersion(tx);
    const body = { ...stripServerFields(input), ...fixed };
    await resolveForeignKeys(tx, def, body);
    const existing = await findRow(tx, def, key, within);
    for (const f of def.extensionFields ?? []) if (existing && !(f in body)) body[f] = existing[f];
    const now = nowSeconds();
    const byId = UUID_RE.test(key);
    if (!byId && !def.endpointKey) throw AdminError.message(404, 'Not found');
    const identity: Record<string, unknown> = byId ? { id: key } : { [def.endpointKey!]: key, id: (existing?.id as string) ?? body.id ?? randomUUID() };
    if (def.lookupKey && !byId) delete identity[def.endpointKey!];
    const v = validate(def, stamp(def, {
      ...body,
      ...(def.lookupKey && !byId ? { [def.endpointKey!]: key } : {}),
      ...identity,
      ...(existing ? { id: existing.id } : {}),
    }, (existing?.created_at as number) ?? now, now));
    const entity = v.entity;
    await checkForeignKeysExist(tx, def, entity);
    try {
      await auditedWrite(tx, ctx, def.name, existing ? rowToEntity(def, existing) : null, entity, version, existing
        ? tx.update(def.table).set(entityToRow(def, entity)).where(eq(def.table.id, existing.id as string))
        : tx.insert(def.table).values(entityToRow(def, entity)));
    } catch (err) { mapDbError(def, err, entity); }
    return { entity: await finishWrite(tx, def, v, body), version };
  });
}

/** PATCH: merge `input` over the stored entity; records named in `mergeRecords` merge key-by-key. */
export async function updateEntity(db: Db, ctx: WriteContext, def: EntityDef, key: string, input: Record<string, unknown>, within?: Within): Promise<WriteResult> {
  return db.transaction(async (tx) => {
    const version = await bumpVersion(tx);
    const row = await findRow(tx, def, key, within);
    const existing = row ? rowToEntity(def, row) : undefined;
    if (!existing) throw AdminError.message(404, 'Not found');
    const body = stripServerFields(input);
    await resolveForeignKeys(tx, def, body);
    const merged: Record<string, unknown> = { ...existing };
    for (const [k, v] of Object.entries(body)) {
      const prev = merged[k];
      if (def.mergeRecords?.includes(k) && v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object') {
        merged[k] = { ...(prev as object), ...(v as object) };
      } else {
        merged[k] = v;
      }
    }
    const v = validate(def, stamp(def, merged, existing.created_at as number, nowSeconds()));
    const entity = v.entity;
    await checkForeignKeysExist(tx, def, entity);
    try {
      await auditedWrite(tx, ctx, def.name, existing, entity, version, tx.update(def.table).set(entityToRow(def, entity)).where(eq(def.table.id, existing.id)));
    } catch (err) { mapDbError(def, err, entity); }
    return { entity: await finishWrite(tx, def, v, body), version };
  });
}

/** DELETE: returns whether a row was deleted. Deleting what does not exist changes nothing (no version, no entry). */
export async function deleteEntity(db: Db, ctx: WriteContext, def: EntityDef, key: string, within?: Within): Promise<{ deleted: boolean; version?: number }> {
  try {
    return await db.transaction(async (tx) => {
      const version = await bumpVersion(tx);
      const row = await findRow(tx, def, key, within);
      if (!row) tx.rollback();
      await def.beforeDelete?.(tx, row!);
      try {
        await auditedWrite(tx, ctx, def.name, rowToEntity(def, row!), null, version, tx.delete(def.table).where(eq(def.table.id, row!.id as string)));
      } catch (err) { mapDbError(def, err); }
      return { deleted: true, version };
    });
  } catch (err) {
    if (err instanceof TransactionRollbackError) return { deleted: false };
    throw err;
  }
}

/** Schema-only validation for `POST /schemas/{entity}/validate`. */
export function validateOnly(def: EntityDef, input: Record<string, unknown>): void {
  const now = nowSeconds();
  validate(def, stamp(def, { ...stripServerFields(input), id: (input.id as string) ?? randomUUID() }, now, now));
}
