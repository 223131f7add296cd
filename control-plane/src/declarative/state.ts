// From a file to the entities it means, and from two sets of entities to the changes between
// them. Every entity is validated by the same definitions the admin API writes through
// (services/entity.ts), so a file accepts exactly what the API accepts, and its errors carry the
// path of the field in the file. Ids: an entity that already exists keeps its id (matched by the
// id the file gives, else by its natural key: a name, a username, a plugin's scope), so
// dependents survive and an unchanged file changes nothing.
import { randomUUID } from 'node:crypto';
import { canonicalJson, verifyPassword, isPasswordHash } from '@portico/shared';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
import { ENTITY_BY_NAME, type EntityDef } from '../services/entity.ts';
import { checkEntity, entityToRow, fkColumns, rowToEntity, stamp, type Entity } from '../services/store.ts';
import { ENTITY_ORDER, formatPath, throwIfProblems, type DeclarativeFile, type EntityType, type Item, type ParsedText, type Problem } from './file.ts';

export type State = Record<EntityType, Entity[]>;

export function emptyState(): State {
  return Object.fromEntries(ENTITY_ORDER.map((t) => [t, []])) as unknown as State;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const defOf = (type: EntityType): EntityDef => ENTITY_BY_NAME.get(type)!;

/** Whether `--select-tag`/`_info.select_tags` hand this entity to the file: it carries every tag. */
export function isManaged(entity: Entity, selectTags: readonly string[]): boolean {
  if (!selectTags.length) return true;
  const tags = Array.isArray(entity.tags) ? entity.tags : [];
  return selectTags.every((t) => tags.includes(t));
}

/** What identifies an entity besides its id: the key a second copy would collide on. */
export function naturalKey(def: EntityDef, e: Entity): string | undefined {
  const cacheKey = def.rowExtras?.(e).cache_key;
  if (typeof cacheKey === 'string') return cacheKey;
  if (def.name === 'keyauth_credentials') return e.key_hash as string;
  if (def.name === 'consumers') return (e.username as string | null) ?? (e.custom_id ? `custom_id:${e.custom_id}` : undefined);
  const k = def.endpointKey ? e[def.endpointKey] : undefined;
  return typeof k === 'string' ? k : undefined;
}

/**
 * Fields that hold `{id}` of another entity without being one of its foreign keys (a service's
 * `client_certificate`): files write them as the bare id, as Kong's declarative format and decK do.
 */
export function idOnlyReferenceFields(def: EntityDef): readonly string[] {
  let fields = idOnlyFields.get(def);
  if (!fields) idOnlyFields.set(def, fields = [...fkColumns(def)].filter((f) => !def.foreignKeys.some((fk) => fk.field === f)));
  return fields;
}
const idOnlyFields = new WeakMap<EntityDef, string[]>();

/** The human name of an entity in diffs and messages. */
export function displayName(type: EntityType, e: Entity): string {
  const def = defOf(type);
  if (type === 'plugins') return `${e.name}${e.instance_name ? ` (${e.instance_name})` : ''}`;
  if (type === 'keyauth_credentials') return `${e.key_prefix}…`;
  const k = def.endpointKey ? e[def.endpointKey] : undefined;
  return typeof k === 'string' ? k : e.id;
}

/** The stored form, with null for every absent field: equal entities compare equal. */
function normalize(def: EntityDef, e: Entity): Entity {
  return rowToEntity(def, entityToRow(def, e));
}

/** Deep equality where an absent field equals null (stored rows have null, files leave fields out). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a == null || b == null) return a == null && b == null;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => sameValue(v, bb[i]));
  }
  const ao = a as Record<string, unknown>; const bo = b as Record<string, unknown>;
  for (const k of Object.keys(ao)) if (!sameValue(ao[k], bo[k])) return false;
  for (const k of Object.keys(bo)) if (!(k in ao) && bo[k] != null) return false;
  return true;
}

/**
 * Whether two versions of an entity hold the same content, field by field over its schema
 * (timestamps are the write's, not the content, unless `exact`). Equal to comparing contentKey()s,
 * without building two canonical strings per entity: a 10,000-route diff is 20,000 of them.
 */
export function sameContent(def: EntityDef, a: Entity, b: Entity, exact = false): boolean {
  for (const k of Object.keys(def.schema.shape)) {
    if (!exact && (k === 'created_at' || k === 'updated_at')) continue;
    if (!sameValue(a[k], b[k])) return false;
  }
  return true;
}

/** Content as one string, for matching by content (a renamed entity); timestamps left out unless `exact`. */
export function contentKey(def: EntityDef, e: Entity, exact = false, omit: string[] = []): string {
  const { created_at: _c, updated_at: _u, ...rest } = normalize(def, e);
  const body: Record<string, unknown> = exact ? normalize(def, e) : rest;
  for (const k of omit) delete body[k];
  return canonicalJson(body);
}

/**
 * Resolve a file against the current entities: references by name or id, ids reused, every entity
 * validated. Throws DeclarativeError with every problem (and line, given `lineOf`).
 */
export function resolveFile(file: DeclarativeFile, current: State, lineOf?: ParsedText['lineOf']): State {
  const problems: Problem[] = [];
  const desired = emptyState();
  const byId = new Map<string, Map<string, Entity>>();
  const byKey = new Map<string, Map<string, Entity>>();
  const now = nowSeconds();
  for (const type of ENTITY_ORDER) { byId.set(type, new Map()); byKey.set(type, new Map()); }
  const unmanagedRef = (type: string, ref: string): Entity | undefined => {
    const def = ENTITY_BY_NAME.get(type)!;
    return current[type as EntityType].find((e) => !isManaged(e, file.selectTags)
      && (e.id === ref || (def.endpointKey !== undefined && e[def.endpointKey] === ref)));
  };

  /** `service: my-svc`, `service: {name: my-svc}`, `service: {id: …}`, or a bare id. */
  function lookupRef(type: string, ref: unknown): string | undefined {
    const def = ENTITY_BY_NAME.get(type)!;
    let key: unknown = ref;
    if (ref && typeof ref === 'object' && !Array.isArray(ref)) {
      const r = ref as Record<string, unknown>;
      key = r.id ?? (def.endpointKey ? r[def.endpointKey] : undefined);
    }
    if (typeof key !== 'string') return undefined;
    const found = byId.get(type)!.get(key) ?? byKey.get(type)!.get(key) ?? unmanagedRef(type, key);
    return found?.id;
  }

  for (const type of ENTITY_ORDER) {
    const def = defOf(type);
    const currentById = new Map(current[type].map((e) => [e.id, e]));
    const currentByKey = new Map<string, Entity>();
    for (const e of current[type]) { const k = naturalKey(def, e); if (k) currentByKey.set(k, e); }
    const claimed = new Set<string>();
    const pending: { item: Item; entity: Entity }[] = [];
    const where = new Map<string, Item>();

    for (const item of file.items[type]) {
      const { created_at: _c, updated_at: _u, ...input } = item.input;
      let skip = false;
      for (const fk of def.foreignKeys) {
        if (item.parent?.field === fk.field) {
          if (!item.parent.item.id) skip = true;
          else input[fk.field] = { id: item.parent.item.id };
          continue;
        }
        const ref = input[fk.field];
        if (ref == null) continue;
        const id = lookupRef(fk.entity, ref);
        if (!id) {
          problems.push({ path: [...item.path, fk.field], message: `references a ${fk.entity.slice(0, -1)} that is neither in the file nor managed elsewhere: ${JSON.stringify(ref)}` });
          skip = true;
        } else input[fk.field] = { id };
      }
      if (skip) continue;
      for (const f of idOnlyReferenceFields(def)) if (typeof input[f] === 'string') input[f] = { id: input[f] };
      if (type === 'basicauth_credentials' && typeof input.password === 'string') {
        if (!file.transform && !isPasswordHash(input.password)) {
          problems.push({ path: [...item.path, 'password'], message: '_transform is false: the password must be in its stored (hashed) form' });
          continue;
        }
        // The same password as stored keeps the stored hash (a new salt would be a change every sync).
        const existing = current[type].find((e) => e.username === input.username);
        if (existing && !isPasswordHash(input.password) && verifyPassword(input.password, existing.password as string)) input.password = existing.password;
      }
      const givenId = typeof input.id === 'string' ? input.id : undefined;
      const r = checkEntity(def, stamp(def, { ...input, id: givenId ?? randomUUID() }, now, now));
      if (!r.ok) {
        for (const v of r.violations) problems.push({ path: [...item.path, ...v.path], message: v.message });
        continue;
      }
      const entity = { ...r.entity };
      // What the admin API's write checks in the store (checkIdReferences), checked in the file.
      const dangling = def.idReferences?.(entity).filter((ref) => !byId.get(ref.entity)!.has(ref.id) && !unmanagedRef(ref.entity, ref.id)) ?? [];
      for (const ref of dangling) {
        problems.push({ path: [...item.path, ...ref.path], message: `references a ${ref.entity.slice(0, -1)} that is neither in the file nor managed elsewhere: ${ref.id}` });
      }
      if (dangling.length) continue;
      // Services a plugin's config names (aggregator legs): in the file, or managed elsewhere.
      const danglingService = type === 'plugins' ? PLUGIN_DEFINITIONS.get(entity.name as string)?.serviceRefs?.(entity.config).find((x) => !lookupRef('services', x.ref)) : undefined;
      if (danglingService) {
        problems.push({ path: [...item.path, 'config', ...danglingService.path], message: `references a service that is neither in the file nor managed elsewhere: ${JSON.stringify(danglingService.ref)}` });
        continue;
      }
      const key = naturalKey(def, entity);
      const duplicate = (givenId && where.get(`id:${givenId}`)) || (key && where.get(`key:${key}`));
      if (duplicate) {
        problems.push({ path: item.path, message: `duplicate of ${formatPath(duplicate.path)} (${key && where.get(`key:${key}`) ? displayName(type, entity) : givenId})` });
        continue;
      }
      if (givenId) where.set(`id:${givenId}`, item);
      if (key) where.set(`key:${key}`, item);
      const match = (givenId ? currentById.get(givenId) : undefined) ?? (key ? currentByKey.get(key) : undefined);
      if (match && !isManaged(match, file.selectTags)) {
        problems.push({ path: item.path, message: `${type.slice(0, -1)} ${displayName(type, match)} exists without the select tags ${file.selectTags.join(', ')}: it is not this file's to change` });
        continue;
      }
      if (match) {
        entity.id = match.id; claimed.add(match.id);
        if ('created_at' in match) entity.created_at = match.created_at;
      } else if (!givenId) {
        pending.push({ item, entity });
        continue;
      }
      item.id = entity.id;
      desired[type].push(entity);
    }

    // A renamed entity: no id given, no name match, but content equal to one that would otherwise
    // be deleted. It keeps that one's id, so its dependents stay (routes under a renamed service).
    if (pending.length) {
      const omit = ['id', ...(def.endpointKey ? [def.endpointKey] : [])];
      const orphans = new Map<string, Entity>();
      for (const e of current[type]) {
        if (!claimed.has(e.id) && isManaged(e, file.selectTags)) orphans.set(contentKey(def, e, false, omit), e);
      }
      for (const { item, entity } of pending) {
        const old = orphans.size ? orphans.get(contentKey(def, entity, false, omit)) : undefined;
        if (old) { orphans.delete(contentKey(def, old, false, omit)); entity.id = old.id; if ('created_at' in old) entity.created_at = old.created_at; }
        item.id = entity.id;
        desired[type].push(entity);
      }
    }
    for (const e of desired[type]) {
      byId.get(type)!.set(e.id, e);
      if (def.endpointKey && typeof e[def.endpointKey] === 'string') byKey.get(type)!.set(e[def.endpointKey] as string, e);
    }
  }
  throwIfProblems(problems, lineOf);
  return desired;
}

// ---------------------------------------------------------------------------------------------
// Diff

export interface Plan {
  create: Record<EntityType, Entity[]>;
  update: Record<EntityType, { before: Entity; after: Entity }[]>;
  delete: Record<EntityType, Entity[]>;
}

const byType = <T>(): Record<EntityType, T[]> => Object.fromEntries(ENTITY_ORDER.map((t) => [t, []])) as unknown as Record<EntityType, T[]>;

/**
 * The changes that turn `current` into `desired`, touching only managed entities. `exact`
 * compares timestamps too (a rollback restores the very rows of an old version, so its hash).
 */
export function diffStates(current: State, desired: State, selectTags: readonly string[] = [], exact = false): Plan {
  const plan: Plan = { create: byType(), update: byType(), delete: byType() };
  const now = nowSeconds();
  for (const type of ENTITY_ORDER) {
    const def = defOf(type);
    const before = new Map(current[type].map((e) => [e.id, e]));
    const wanted = new Set<string>();
    for (const e of desired[type]) {
      wanted.add(e.id);
      const old = before.get(e.id);
      if (!old) { plan.create[type].push(e); continue; }
      if (sameContent(def, old, e, exact)) continue;
      const after = exact ? e : { ...e };
      if (!exact && 'updated_at' in old) after.updated_at = now;
      plan.update[type].push({ before: old, after });
    }
    for (const e of current[type]) if (!wanted.has(e.id) && isManaged(e, selectTags)) plan.delete[type].push(e);
  }
  return plan;
}

export function planSize(plan: Plan): number {
  let n = 0;
  for (const t of ENTITY_ORDER) n += plan.create[t].length + plan.update[t].length + plan.delete[t].length;
  return n;
}

/** One line: `+2 routes, ~1 services, -1 plugins` (or `no changes`). */
export function planSummary(plan: Plan): string {
  const parts: string[] = [];
  for (const [sign, part] of [['+', plan.create], ['~', plan.update], ['-', plan.delete]] as const) {
    for (const t of ENTITY_ORDER) if (part[t].length) parts.push(`${sign}${part[t].length} ${t}`);
  }
  return parts.length ? parts.join(', ') : 'no changes';
}

/** The plan as an answer: per entity type, created/updated/deleted with names (secrets are the caller's to redact). */
export function planBody(plan: Plan): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const t of ENTITY_ORDER) {
    const c = plan.create[t]; const u = plan.update[t]; const d = plan.delete[t];
    if (!c.length && !u.length && !d.length) continue;
    out[t] = {
      created: c.map((e) => ({ id: e.id, name: displayName(t, e), entity: e })),
      updated: u.map(({ before, after }) => ({ id: after.id, name: displayName(t, after), before, after })),
      deleted: d.map((e) => ({ id: e.id, name: displayName(t, e), entity: e })),
    };
  }
  return out;
}

