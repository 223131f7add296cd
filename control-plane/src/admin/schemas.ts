// `GET /schemas/{entity}` and `/schemas/plugins/{name}`: what a client may send, in Kong's
// field-list shape (reference/kong-compat.md §1.10, §5.3), so decK-style tools and form builders can
// read types, defaults and constraints from it.
//
// The list describes input, not storage: write-only inputs (a key-auth `key` and `ttl`, a service
// `url`) are listed with `write_only: true`; secrets carry Kong's `encrypted: true`; fields the
// server fills (`id`, timestamps, a generated jwt `key`) are `auto: true` and not required; stored
// derivations (`key_hash`, `key_prefix`) are left out. Entity-level rules appear as Kong's
// `entity_checks` (`at_least_one_of`, …), read from the zod schema's metadata.
import { z } from 'zod';
import type { EntityDef } from '../services/entity.ts';

type FieldJson = Record<string, unknown>;

/** Fields every entity's server fills in. */
const SERVER_FIELDS = new Set(['id', 'created_at', 'updated_at']);

function checksOf(s: any): any[] {
  return (s._zod.def.checks ?? []).map((c: any) => c._zod?.def ?? c);
}

function describe(schema: z.ZodType): FieldJson {
  let s: any = schema;
  const out: FieldJson = {};
  let required = true;
  const description = (schema as any).description;
  while (s) {
    const t = s._zod.def.type;
    if (t === 'default') { out.default = s._zod.def.defaultValue; s = s._zod.def.innerType; }
    else if (t === 'prefault') { s = s._zod.def.innerType; required = false; }
    else if (t === 'nullable' || t === 'optional') { required = false; s = s._zod.def.innerType; }
    else if (t === 'pipe') s = s._zod.def.in;
    else break;
  }
  const t = s._zod.def.type;
  const checks = checksOf(s);
  // Kong-style constraints a schema declares as metadata (`starts_with` on route paths).
  const { description: _d, entity_checks: _e, ...declared } = (z.globalRegistry.get(s) ?? {}) as Record<string, unknown>;
  Object.assign(out, declared);
  switch (t) {
    case 'string': {
      out.type = 'string';
      for (const c of checks) {
        if (c.check === 'string_format' && c.format === 'starts_with') out.starts_with = c.prefix;
        if (c.check === 'max_length') out.len_max = c.maximum;
        if (c.check === 'min_length') out.len_min = c.minimum;
      }
      break;
    }
    case 'number': {
      out.type = s._zod.bag?.format?.includes('int') || s._zod.def.format === 'safeint' ? 'integer' : 'number';
      let min: number | undefined; let max: number | undefined;
      for (const c of checks) {
        if (c.check === 'greater_than') { if (c.inclusive) min = Number(c.value); else out.gt = Number(c.value); }
        if (c.check === 'less_than' && c.inclusive) max = Number(c.value);
      }
      min ??= s._zod.bag?.minimum; max ??= s._zod.bag?.maximum;
      if (min !== undefined && max !== undefined && Number.isFinite(min) && Number.isFinite(max)) out.between = [min, max];
      break;
    }
    case 'boolean': out.type = 'boolean'; break;
    case 'enum': out.type = 'string'; out.one_of = Object.values(s._zod.def.entries); break;
    case 'union': out.type = 'integer'; out.one_of = s._zod.def.options.map((o: any) => o._zod.def.values[0]); break;
    case 'array': out.type = 'array'; out.elements = describe(s._zod.def.element); break;
    case 'record': out.type = 'map'; out.keys = { type: 'string' }; out.values = describe(s._zod.def.valueType); break;
    case 'object': {
      out.type = 'record'; out.fields = fieldsOf(s);
      const entityChecks = z.globalRegistry.get(s)?.entity_checks;
      if (entityChecks) out.entity_checks = entityChecks;
      break;
    }
    default: out.type = t;
  }
  out.required = required && out.default === undefined;
  if (description) out.description = description;
  return out;
}

function fieldsOf(obj: z.ZodObject): FieldJson[] {
  return Object.entries(obj.shape).map(([name, field]) => ({ [name]: describe(field as z.ZodType) }));
}

function entityChecksOf(schema: z.ZodType): unknown[] {
  return (z.globalRegistry.get(schema)?.entity_checks as unknown[] | undefined) ?? [];
}

export function entitySchemaJson(def: EntityDef): { fields: FieldJson[]; entity_checks: unknown[] } {
  const view = def.schemaView ?? {};
  const fks = new Map(def.foreignKeys.map((fk) => [fk.field, fk]));
  const fields: FieldJson[] = [];
  const add = (name: string, field: z.ZodType, extra: FieldJson = {}) => {
    const f = fks.get(name);
    let json: FieldJson = f
      ? { type: 'foreign', reference: f.entity, required: !!f.required, ...(f.required ? {} : { default: null }) }
      : describe(field);
    if (SERVER_FIELDS.has(name) || view.auto?.includes(name)) json = { ...json, auto: true, required: false };
    if (view.encrypted?.includes(name)) json = { ...json, encrypted: true, referenceable: true };
    if (name === def.endpointKey) json = { ...json, unique: true };
    fields.push({ [name]: { ...json, ...extra } });
  };
  for (const [name, field] of Object.entries(def.schema.shape)) {
    if (view.hidden?.includes(name)) continue;
    add(name, field as z.ZodType, name === 'name' && view.oneOfNames ? { one_of: view.oneOfNames() } : {});
  }
  for (const [name, field] of Object.entries(view.input?.shape ?? {})) add(name, field as z.ZodType, { write_only: true });
  return { fields, entity_checks: entityChecksOf(def.schema) };
}

/** `GET /schemas/plugins/{name}`: the plugin's config inside Kong's plugin-entity field list. */
export function pluginSchemaJson(config: z.ZodObject): { fields: FieldJson[]; entity_checks: unknown[] } {
  return {
    fields: [
      { consumer: { type: 'foreign', reference: 'consumers', required: false, default: null } },
      { protocols: { type: 'set', elements: { type: 'string' }, default: ['grpc', 'grpcs', 'http', 'https'], required: true } },
      { config: { type: 'record', fields: fieldsOf(config), required: true } },
    ],
    // Declared with Kong's names from the plugin entity (`config.allow`).
    entity_checks: entityChecksOf(config),
  };
}
