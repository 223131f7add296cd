import { z } from 'zod';
import { headerNames, pairs } from '../transformer-fields.ts';
import type { PluginDefinition } from '../types.ts';

// Headers only: Kong's `json` lists (and `json_types`) wait for the body phase (issue 11), and are
// left out so a config naming them is refused (`unknown field`) rather than silently ignored.
export const responseTransformerConfig = z.strictObject({
  remove: z.strictObject({ headers: headerNames().describe('Response headers removed') }).default({ headers: [] }),
  rename: z.strictObject({ headers: pairs('rename-header').describe('Response headers renamed, as old:new (value kept)') }).default({ headers: [] }),
  replace: z.strictObject({ headers: pairs('header').describe('Response headers replaced when present, as name:value') }).default({ headers: [] }),
  add: z.strictObject({ headers: pairs('header').describe('Response headers added when absent, as name:value') }).default({ headers: [] }),
  append: z.strictObject({ headers: pairs('header').describe('Response headers appended (repeated), as name:value') }).default({ headers: [] }),
});
export type ResponseTransformerConfig = z.infer<typeof responseTransformerConfig>;

export const responseTransformer: PluginDefinition = { name: 'response-transformer', priority: 800, configSchema: responseTransformerConfig };
