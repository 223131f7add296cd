// Entities → a declarative file (kong.yml), nested the way people write it: routes and plugins
// under their service, credentials under their consumer, targets under their upstream, SNIs under
// their certificate. Ids are kept, so importing the file back matches every entity and changes
// nothing (the same hash). Key-auth keys leave as `key_hash` (the key itself is not stored); a file
// carrying the hash imports the same credential. Certificates' private keys leave as they are (as
// decK's dump has them); the admin API redacts them for viewers (config-routes.ts).
import { stringify } from 'yaml';
import { ENTITY_BY_NAME } from '../services/entity.ts';
import type { Entity } from '../services/store.ts';
import { ENTITY_ORDER, FORMAT_VERSION, NESTED, type EntityType } from './file.ts';
import { idOnlyReferenceFields, isManaged, type State } from './state.ts';

const SERVER_FIELDS = new Set(['created_at', 'updated_at']);
/** Fields a write computes from the others (decK's file schema refuses them): left out, recomputed on import. */
const DERIVED_FIELDS: Partial<Record<EntityType, string[]>> = { ca_certificates: ['cert_digest'] };

function clean(e: Entity, omit: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (v === null || v === undefined || SERVER_FIELDS.has(k) || omit.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

const sortKey = (type: EntityType, e: Entity): string => {
  const def = ENTITY_BY_NAME.get(type)!;
  const k = def.endpointKey ? e[def.endpointKey] : undefined;
  return `${typeof k === 'string' ? k : ''}\u0000${e.name ?? ''}\u0000${e.id}`;
};

/** The file for `state` (only the entities `selectTags` manage, when given). */
export function exportDocument(state: State, selectTags: readonly string[] = []): Record<string, unknown> {
  const doc: Record<string, unknown> = { _format_version: FORMAT_VERSION };
  if (selectTags.length) doc._info = { select_tags: [...selectTags] };
  const byId = new Map<string, { type: EntityType; entity: Entity; out: Record<string, unknown> }>();
  const refOf = (type: string, id: string): string => {
    const def = ENTITY_BY_NAME.get(type)!;
    const parent = byId.get(id)?.entity;
    const k = parent && def.endpointKey ? parent[def.endpointKey] : undefined;
    return typeof k === 'string' ? k : id;
  };
  for (const type of ENTITY_ORDER) {
    const def = ENTITY_BY_NAME.get(type)!;
    const list = state[type].filter((e) => isManaged(e, selectTags)).sort((a, b) => sortKey(type, a).localeCompare(sortKey(type, b)));
    for (const entity of list) {
      const refs = def.foreignKeys.filter((fk) => entity[fk.field]);
      // Nest under the one parent it belongs to, when that parent is in this file.
      const only = refs.length === 1 ? refs[0] : undefined;
      const parent = only ? byId.get((entity[only.field] as { id: string }).id) : undefined;
      const nestable = parent && NESTED[parent.type]?.[type] === only!.field;
      const out = clean(entity, [...(nestable ? [only!.field] : []), ...(DERIVED_FIELDS[type] ?? [])]);
      for (const fk of refs) {
        if (nestable && fk === only) continue;
        out[fk.field] = refOf(fk.entity, (entity[fk.field] as { id: string }).id);
      }
      for (const f of idOnlyReferenceFields(def)) if (out[f]) out[f] = (out[f] as { id: string }).id;
      byId.set(entity.id, { type, entity, out });
      if (nestable) ((parent!.out[type] ??= []) as unknown[]).push(out);
      else ((doc[type] ??= []) as unknown[]).push(out);
    }
  }
  return doc;
}

export function exportYaml(state: State, selectTags: readonly string[] = []): string {
  return stringify(exportDocument(state, selectTags), { lineWidth: 0 });
}
