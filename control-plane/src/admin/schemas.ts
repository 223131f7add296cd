// `GET /schemas/{entity}`: the zod schema rendered in Kong's field-list shape, so decK-style
// tools can read defaults (reference/kong-compat.md §1.10, §5.3).
import type { z } from 'zod';
import type { EntityDef } from '../services/entity.ts';

type FieldJson = Record<string, unknown>;

function describe(schema: z.ZodType): FieldJson {
  let s: any = schema;
  const out: FieldJson = {};
  let required = true;
  const description = (schema as any).description;
  while (s) {
    const t = s._zod.def.type;
    if (t === 'default') { out.default = s._zod.def.defaultValue; s = s._zod.def.innerType; }
    else if (t === 'nullable' || t === 'optional') { required = false; s = s._zod.def.innerType; }
    else if (t === 'pipe') s = s._zod.def.in;
    else break;
  }
  const t = s._zod.def.type;
  switch (t) {
    case 'string': out.type = 'string'; break;
    case 'number': out.type = s._zod.bag?.format?.includes('int') || s._zod.def.format === 'safeint' ? 'integer' : 'number';
      if (s._zod.bag?.minimum !== undefined && s._zod.bag?.maximum !== undefined) out.between = [s._zod.bag.minimum, s._zod.bag.maximum];
      break;
    case 'boolean': out.type = 'boolean'; break;
    case 'enum': out.type = 'string'; out.one_of = Object.values(s._zod.def.entries); break;
    case 'union': out.type = 'integer'; out.one_of = s._zod.def.options.map((o: any) => o._zod.def.values[0]); break;
    case 'array': out.type = 'array'; out.elements = describe(s._zod.def.element); break;
    case 'record': out.type = 'map'; out.keys = { type: 'string' }; out.values = describe(s._zod.def.valueType); break;
    case 'object': out.type = 'record'; out.fields = fieldsOf(s); break;
    default: out.type = t;
  }
  if (out.default === undefined && !required) out.required = false;
  else out.required = required && out.default === undefined ? true : required;
  if (description) out.description = description;
  return out;
}

function fieldsOf(obj: z.ZodObject): FieldJson[] {
  return Object.entries(obj.shape).map(([name, field]) => ({ [name]: describe(field as z.ZodType) }));
}

export function entitySchemaJson(def: EntityDef): { fields: FieldJson[] } {
  return { fields: fieldsOf(def.schema) };
}

/** `GET /schemas/plugins/{name}`: the plugin's config inside Kong's plugin-entity field list. */
export function pluginSchemaJson(config: z.ZodObject): { fields: FieldJson[] } {
  return {
    fields: [
      { consumer: { type: 'foreign', reference: 'consumers', required: false } },
      { protocols: { type: 'set', elements: { type: 'string' }, default: ['grpc', 'grpcs', 'http', 'https'], required: true } },
      { config: { type: 'record', fields: fieldsOf(config), required: true } },
    ],
  };
}
