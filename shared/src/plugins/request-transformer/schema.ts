import { z } from 'zod';
import { opt, text } from '../../entities/fields.ts';
import { bodyNames, bodyPairs, checkBodyPaths, headerNames, jsonTypes, maxBodyBytes, pairs, queryNames } from '../transformer-fields.ts';
import type { ValueType } from '../body-transform.ts';
import type { PluginDefinition } from '../types.ts';
import { templateError } from './template.ts';

// `body` lists apply to JSON, form-urlencoded and multipart request bodies in the body phase
// (reference/kong-compat.md §4.9); -advanced adds Kong Enterprise's `dots_in_keys`, `allow.body`
// and `json_types` (bodyFields in transformer-fields.ts).
const withValues = (what: string, advanced: boolean) => z.strictObject({
  headers: pairs('header', templateError).describe(`Headers to ${what}, as name:value (value may be a template)`),
  querystring: pairs('query', templateError).describe(`Query arguments to ${what}, as name:value (value may be a template)`),
  body: bodyPairs(templateError).describe(`Body fields to ${what}, as name:value (value may be a template)`),
  ...(advanced ? { json_types: jsonTypes() } : {}),
}).default({ headers: [], querystring: [], body: [], ...(advanced ? { json_types: [] } : {}) } as never);

/** Kong's typedefs.http_method (`^%u+$`) and its message. */
const httpMethod = () => z.string().regex(/^[A-Z]+$/, { error: (i) => `invalid value: ${i.input as string}` });

const uri = () => text().superRefine((v, ctx) => {
  // Kong fails the request (500) on a path without a leading slash; refused here at write time.
  if (!v.startsWith('/')) { ctx.addIssue({ code: 'custom', message: 'must start with /' }); return; }
  const problem = templateError(v);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

function requestTransformerSchema(advanced: boolean) {
  const shape = {
    http_method: opt(httpMethod()).describe('Method sent upstream instead of the client\'s'),
    remove: z.strictObject({
      headers: headerNames().describe('Headers removed'),
      querystring: queryNames().describe('Query arguments removed'),
      body: bodyNames().describe('Body fields removed'),
    }).default({ headers: [], querystring: [], body: [] }),
    rename: z.strictObject({
      headers: pairs('rename-header').describe('Headers renamed, as old:new (value kept)'),
      querystring: pairs('query').describe('Query arguments renamed, as old:new'),
      body: bodyPairs().describe('Body fields renamed, as old:new'),
    }).default({ headers: [], querystring: [], body: [] }),
    replace: z.strictObject({
      headers: pairs('header', templateError).describe('Headers replaced when present (Host always), as name:value'),
      querystring: pairs('query', templateError).describe('Query arguments replaced when present, as name:value'),
      body: bodyPairs(templateError).describe('Body fields replaced when present, as name:value'),
      uri: opt(uri()).describe('Upstream path instead of the one built for the service (may be a template)'),
      ...(advanced ? { json_types: jsonTypes() } : {}),
    }).default({ headers: [], querystring: [], body: [], uri: null, ...(advanced ? { json_types: [] } : {}) } as never),
    add: withValues('add when absent', advanced),
    append: withValues('append (a repeated header, a repeated argument, an array)', advanced),
  };
  if (!advanced) return z.strictObject(shape);
  return z.strictObject({
    ...shape,
    allow: z.strictObject({ body: bodyNames().describe('Only these body fields are kept (applied first)') }).default({ body: [] }),
    dots_in_keys: z.boolean().default(true).describe('Whether a dot is part of a key (true, Kong\'s default) or separates nested keys (a.b, a[*].b)'),
    max_body_bytes: maxBodyBytes(),
  }).superRefine(checkBodyPaths(['remove', 'rename', 'replace', 'add', 'append', 'allow'], 'body'));
}

export const requestTransformerConfig = requestTransformerSchema(false);
export const requestTransformerAdvancedConfig = requestTransformerSchema(true);
/** Both variants' configs: the handler is one (request-transformer-advanced reads the extra fields). */
/** Both variants' configs: one handler runs both, reading the advanced fields when present. */
export type RequestTransformerConfig = z.infer<typeof requestTransformerConfig> & {
  allow?: { body: string[] }; dots_in_keys?: boolean; max_body_bytes?: number;
  replace: { json_types?: ValueType[] }; add: { json_types?: ValueType[] }; append: { json_types?: ValueType[] };
};

export const requestTransformer: PluginDefinition = { name: 'request-transformer', priority: 801, configSchema: requestTransformerConfig };
/** Kong Enterprise's name and priority, free here. */
export const requestTransformerAdvanced: PluginDefinition = {
  name: 'request-transformer-advanced', priority: 802, configSchema: requestTransformerAdvancedConfig as unknown as z.ZodObject,
};
