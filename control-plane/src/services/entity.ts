// An admin entity is a definition, not code: its zod schema (shared/), its table, its endpoint key
// and its foreign keys. The store, the routes and the snapshot builder work from these.
import type { z } from 'zod';
import type { PgTable } from 'drizzle-orm/pg-core';
import { expandServiceUrl, routeSchema, serviceSchema, type Violation } from '@portico/shared';
import * as tables from '../db/schema.ts';

export interface ForeignKey {
  /** Field name in the entity (`service`); stored as `<field>_id`. */
  field: string;
  /** Referenced entity's collection name. */
  entity: string;
}

export interface EntityDef {
  /** Collection name: the admin path and the snapshot key (`services`). */
  name: string;
  table: PgTable & Record<string, any>;
  schema: z.ZodObject;
  /** Alternative key for item paths (`/services/{name}`), if any. */
  endpointKey?: string;
  foreignKeys: ForeignKey[];
  /** Fields that are records merged key-by-key on PATCH (plugin `config`). */
  mergeRecords?: string[];
  /** Write-only shorthands expanded before validation (service `url`). */
  expandInput?: (input: Record<string, unknown>) => { ok: true; value: Record<string, unknown> } | { ok: false; violation: Violation };
}

export const serviceDef: EntityDef = {
  name: 'services',
  table: tables.services,
  schema: serviceSchema,
  endpointKey: 'name',
  foreignKeys: [],
  expandInput(input) {
    const r = expandServiceUrl(input);
    return r.ok ? r : { ok: false, violation: { path: [r.path], message: r.message } };
  },
};

export const routeDef: EntityDef = {
  name: 'routes',
  table: tables.routes,
  schema: routeSchema,
  endpointKey: 'name',
  foreignKeys: [{ field: 'service', entity: 'services' }],
};

export const ENTITIES: EntityDef[] = [serviceDef, routeDef];
export const ENTITY_BY_NAME = new Map(ENTITIES.map((d) => [d.name, d]));

/** Every entity that references `parent`, with the referencing field. */
export function childrenOf(parent: string): { def: EntityDef; fk: ForeignKey }[] {
  return ENTITIES.flatMap((def) => def.foreignKeys.filter((fk) => fk.entity === parent).map((fk) => ({ def, fk })));
}
