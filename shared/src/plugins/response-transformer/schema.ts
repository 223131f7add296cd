import { z } from 'zod';
import { multiline, opt } from '../../entities/fields.ts';
import { bodyNames, bodyPairs, checkBodyPaths, headerNames, jsonTypes, maxBodyBytes, pairs } from '../transformer-fields.ts';
import type { ValueType } from '../body-transform.ts';
import type { PluginDefinition } from '../types.ts';

// Kong's response-transformer (reference/kong-compat.md §4.10): headers, and `json` lists on JSON
// response bodies (the body phase). -advanced adds Kong Enterprise's `dots_in_keys`, `allow.json`,
// `if_status` on every section and `replace.body`.

/** Kong EE's if_status entries: a status (`200`) or a range (`500-599`). */
const STATUS = /^([1-5]\d\d)(?:-([1-5]\d\d))?$/;
const ifStatus = () => z.array(z.string().superRefine((v, ctx) => {
  const m = STATUS.exec(v);
  if (m === null || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) ctx.addIssue({ code: 'custom', message: `invalid status or range: ${v}` });
})).default([]).describe('Only for these statuses or ranges (e.g. 200, 500-599); empty: all');

function responseTransformerSchema(advanced: boolean) {
  const section = <T extends z.ZodRawShape>(shape: T, what: string) => {
    const extra = advanced ? { if_status: ifStatus() } : {};
    const s = z.strictObject({ ...shape, ...extra });
    return s.default(s.parse({}) as never).describe(what);
  };
  const typed = { json_types: jsonTypes() };
  const shape = {
    remove: section({ headers: headerNames().describe('Response headers removed'), json: bodyNames().describe('JSON keys removed') }, 'Removed'),
    rename: section({
      headers: pairs('rename-header').describe('Response headers renamed, as old:new (value kept)'),
      json: bodyPairs().describe('JSON keys renamed, as old:new'),
    }, 'Renamed'),
    replace: section({
      headers: pairs('header').describe('Response headers replaced when present, as name:value'),
      json: bodyPairs().describe('JSON keys replaced when present, as name:value'),
      ...typed,
      ...(advanced ? { body: opt(multiline()).describe('The whole response body, replaced by this text') } : {}),
    }, 'Replaced'),
    add: section({
      headers: pairs('header').describe('Response headers added when absent, as name:value'),
      json: bodyPairs().describe('JSON keys added when absent, as name:value'), ...typed,
    }, 'Added'),
    append: section({
      headers: pairs('header').describe('Response headers appended (repeated), as name:value'),
      json: bodyPairs().describe('JSON values appended (an array), as name:value'), ...typed,
    }, 'Appended'),
  };
  if (!advanced) return z.strictObject(shape);
  return z.strictObject({
    ...shape,
    allow: section({ json: bodyNames().describe('Only these JSON keys are kept (applied first)') }, 'Allowed'),
    dots_in_keys: z.boolean().default(true).describe('Whether a dot is part of a key (true, Kong\'s default) or separates nested keys (a.b, a[*].b)'),
    max_body_bytes: maxBodyBytes(),
  }).superRefine(checkBodyPaths(['remove', 'rename', 'replace', 'add', 'append', 'allow'], 'json'));
}

export const responseTransformerConfig = responseTransformerSchema(false);
export const responseTransformerAdvancedConfig = responseTransformerSchema(true);

type Section<T> = T & { if_status?: string[] };
/** Both variants' configs: one handler runs both, reading the advanced fields when present. */
export interface ResponseTransformerConfig {
  remove: Section<{ headers: string[]; json: string[] }>;
  rename: Section<{ headers: string[]; json: string[] }>;
  replace: Section<{ headers: string[]; json: string[]; json_types: ValueType[]; body?: string | null }>;
  add: Section<{ headers: string[]; json: string[]; json_types: ValueType[] }>;
  append: Section<{ headers: string[]; json: string[]; json_types: ValueType[] }>;
  allow?: Section<{ json: string[] }>;
  dots_in_keys?: boolean;
  max_body_bytes?: number;
}

export const responseTransformer: PluginDefinition = { name: 'response-transformer', priority: 800, configSchema: responseTransformerConfig };
/** Kong Enterprise's name and priority, free here. */
export const responseTransformerAdvanced: PluginDefinition = {
  name: 'response-transformer-advanced', priority: 800, configSchema: responseTransformerAdvancedConfig as unknown as z.ZodObject,
};
