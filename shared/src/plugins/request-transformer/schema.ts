import { z } from 'zod';
import { opt, text } from '../../entities/fields.ts';
import { headerNames, pairs, queryNames } from '../transformer-fields.ts';
import type { PluginDefinition } from '../types.ts';
import { templateError } from './template.ts';

// Headers and query strings only: Kong's `body` lists wait for the body phase (issue 11), and are
// left out so a config naming them is refused (`unknown field`) rather than silently ignored.
const withValues = (what: string) => z.strictObject({
  headers: pairs('header', templateError).describe(`Headers to ${what}, as name:value (value may be a template)`),
  querystring: pairs('query', templateError).describe(`Query arguments to ${what}, as name:value (value may be a template)`),
}).default({ headers: [], querystring: [] });

/** Kong's typedefs.http_method (`^%u+$`) and its message. */
const httpMethod = () => z.string().regex(/^[A-Z]+$/, { error: (i) => `invalid value: ${i.input as string}` });

const uri = () => text().superRefine((v, ctx) => {
  // Kong fails the request (500) on a path without a leading slash; refused here at write time.
  if (!v.startsWith('/')) { ctx.addIssue({ code: 'custom', message: 'must start with /' }); return; }
  const problem = templateError(v);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

export const requestTransformerConfig = z.strictObject({
  http_method: opt(httpMethod()).describe('Method sent upstream instead of the client\'s'),
  remove: z.strictObject({
    headers: headerNames().describe('Headers removed'),
    querystring: queryNames().describe('Query arguments removed'),
  }).default({ headers: [], querystring: [] }),
  rename: z.strictObject({
    headers: pairs('rename-header').describe('Headers renamed, as old:new (value kept)'),
    querystring: pairs('query').describe('Query arguments renamed, as old:new'),
  }).default({ headers: [], querystring: [] }),
  replace: z.strictObject({
    headers: pairs('header', templateError).describe('Headers replaced when present (Host always), as name:value'),
    querystring: pairs('query', templateError).describe('Query arguments replaced when present, as name:value'),
    uri: opt(uri()).describe('Upstream path instead of the one built for the service (may be a template)'),
  }).default({ headers: [], querystring: [], uri: null }),
  add: withValues('add when absent'),
  append: withValues('append (a repeated header, a repeated argument)'),
});
export type RequestTransformerConfig = z.infer<typeof requestTransformerConfig>;

export const requestTransformer: PluginDefinition = { name: 'request-transformer', priority: 801, configSchema: requestTransformerConfig };
