// Parameter serialization (OpenAPI 3 "style" and "explode", the values Kong's parameter_schema
// takes): turns the text of a query argument, header or path capture into the string, list or
// map its schema is checked against. Values stay strings: the parameter validators coerce them to
// the schema's types (a query `?n=5` meets `{"type":"integer"}`).
//
//   in       styles (first is the default)          explode default
//   path     simple, label, matrix                   false
//   query    form, spaceDelimited, pipeDelimited,    true for form, else false
//            deepObject
//   header   simple                                  false

export const PARAM_LOCATIONS = ['query', 'header', 'path'] as const;
export type ParamLocation = (typeof PARAM_LOCATIONS)[number];
export const STYLES = ['form', 'simple', 'label', 'matrix', 'spaceDelimited', 'pipeDelimited', 'deepObject'] as const;
export type Style = (typeof STYLES)[number];

export const STYLES_BY_LOCATION: Record<ParamLocation, readonly Style[]> = {
  path: ['simple', 'label', 'matrix'],
  query: ['form', 'spaceDelimited', 'pipeDelimited', 'deepObject'],
  header: ['simple'],
};

export const defaultExplode = (style: Style): boolean => style === 'form';

/** What the parameter's schema says its value is: decides how its text is split. */
export type Shape = 'primitive' | 'array' | 'object';

export type ParamValue = string | string[] | Record<string, string>;

export interface ParamSpec { name: string; style: Style; explode: boolean; shape: Shape }

/** The shape a schema's top-level `type` gives (a list of types: the first that is array or object). */
export function shapeOf(schema: unknown): Shape {
  const type = (schema as { type?: unknown } | null)?.type;
  const types = Array.isArray(type) ? type : [type];
  if (types.includes('array')) return 'array';
  if (types.includes('object')) return 'object';
  return 'primitive';
}

/** Pairs `k1,v1,k2,v2` (explode off) into a map; an odd count leaves the last key empty. */
function pairs(items: string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (let i = 0; i < items.length; i += 2) out[items[i]] = items[i + 1] ?? '';
  return out;
}

/** `k1=v1,k2=v2` (explode on) into a map. */
function assignments(items: string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 0) out[item] = '';
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** Splits a serialized list or map on `sep` as the shape and explode rule say. */
function split(text: string, sep: string, spec: ParamSpec, pairSep = sep): ParamValue {
  if (spec.shape === 'primitive') return text;
  if (spec.shape === 'array') return text === '' ? [] : text.split(sep);
  if (text === '') return Object.create(null) as Record<string, string>;
  return spec.explode ? assignments(text.split(pairSep)) : pairs(text.split(sep));
}

/**
 * A path capture or header value in `simple`, `label` or `matrix` style. Returns undefined when the
 * text does not have the style's prefix (a `label` value must start with `.`, `matrix` with `;name=`).
 */
export function parseSimpleLike(text: string, spec: ParamSpec): ParamValue | undefined {
  switch (spec.style) {
    case 'label': {
      if (!text.startsWith('.')) return undefined;
      const body = text.slice(1);
      return spec.explode ? split(body, '.', spec) : split(body, ',', spec);
    }
    case 'matrix': {
      if (!text.startsWith(';')) return undefined;
      if (spec.explode && spec.shape === 'array') {
        const prefix = `${spec.name}=`;
        const items = text.slice(1).split(';');
        if (!items.every((i) => i.startsWith(prefix))) return undefined;
        return items.map((i) => i.slice(prefix.length));
      }
      if (spec.explode && spec.shape === 'object') return assignments(text.slice(1).split(';'));
      const prefix = `;${spec.name}=`;
      if (!text.startsWith(prefix)) return text === `;${spec.name}` ? split('', ',', spec) : undefined;
      return split(text.slice(prefix.length), ',', spec);
    }
    default: return split(text, ',', spec);
  }
}

/** A query parameter, from the parsed query, in `form`, `spaceDelimited`, `pipeDelimited` or `deepObject` style; undefined when absent. */
export function parseQueryParam(query: URLSearchParams, spec: ParamSpec, objectKeys: readonly string[] | null): ParamValue | undefined {
  const { name } = spec;
  switch (spec.style) {
    case 'deepObject': {
      const out: Record<string, string> = Object.create(null);
      let found = false;
      const open = `${name}[`;
      for (const [k, v] of query) {
        if (k.startsWith(open) && k.endsWith(']')) { out[k.slice(open.length, -1)] = v; found = true; }
      }
      return found ? out : undefined;
    }
    case 'form':
      if (spec.explode && spec.shape === 'array') { const all = query.getAll(name); return all.length === 0 ? undefined : all; }
      if (spec.explode && spec.shape === 'object') {
        // Exploded form objects are the query's own arguments: the schema's properties, or all of them.
        const out: Record<string, string> = Object.create(null);
        let found = false;
        for (const [k, v] of query) if (objectKeys === null || objectKeys.includes(k)) { out[k] = v; found = true; }
        return found ? out : undefined;
      }
      return query.has(name) ? split(query.get(name)!, ',', spec) : undefined;
    default: {
      const sep = spec.style === 'spaceDelimited' ? ' ' : '|';
      if (spec.explode && spec.shape === 'array') { const all = query.getAll(name); return all.length === 0 ? undefined : all; }
      return query.has(name) ? split(query.get(name)!, sep, { ...spec, explode: false }) : undefined;
    }
  }
}
