import { z } from 'zod';
import { text } from '../../entities/fields.ts';
import { maxBodyBytes, valueType } from '../transformer-fields.ts';
import { parseJsonPath } from '../json-paths.ts';
import { templateError } from '../request-transformer/template.ts';
import type { PluginDefinition } from '../types.ts';

// json-transform (beyond Kong; reference/edge-design.md §2c): an ordered list of operations on the
// request's and the response's JSON body. Paths are `$.a.b[*].c`, checked here and compiled once per
// snapshot (handler init).

const path = () => text().superRefine((v, ctx) => {
  const p = parseJsonPath(v);
  if (typeof p === 'string') ctx.addIssue({ code: 'custom', message: p });
});
const nonRootPath = () => path().refine((v) => v !== '$', 'must name a key, not the root ($)');
const templateText = () => text().superRefine((v, ctx) => {
  const problem = templateError(v);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

export const CASES = ['camelCase', 'snake_case', 'kebab-case', 'PascalCase'] as const;

const op = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('unwrap'), path: nonRootPath().describe('The value at this path becomes the whole body (absent: the body is left as is)') }),
  z.strictObject({ op: z.literal('allow'), paths: z.array(path()).min(1).describe('Only what these paths reach is kept') }),
  z.strictObject({ op: z.literal('deny'), paths: z.array(nonRootPath()).min(1).describe('These paths are removed') }),
  z.strictObject({ op: z.literal('rename'), from: nonRootPath(), to: nonRootPath() }).describe('Moves a value (a key in the same object, or anywhere)'),
  z.strictObject({
    op: z.literal('set'), path: nonRootPath(),
    value: z.json().optional().describe('A JSON value'),
    template: templateText().optional().describe('A template ($(headers.x), $(consumer.username), $(jwt.claim.sub), …) rendered per request'),
    type: valueType().default('string').describe('How a rendered template is written'),
  }).refine((o) => (o.value === undefined) !== (o.template === undefined), 'exactly one of value and template is required'),
  z.strictObject({
    op: z.literal('case'), keys: z.enum(CASES).describe('Key case to convert every key to (deep)'),
    exclude: z.array(path()).default([]).describe('Values whose own keys are data (maps of ids, labels): left as they are'),
  }),
  z.strictObject({ op: z.literal('wrap'), key: text().min(1), meta: z.record(z.string(), z.json()).optional().describe('Extra keys beside the wrapped body') }),
]);
export type JsonTransformOp = z.infer<typeof op>;

const ops = (what: string) => z.array(op).max(64).default([]).describe(`Operations on the ${what} body, in order`);

export const jsonTransformConfig = z.strictObject({
  request: z.strictObject({ ops: ops('request') }).default({ ops: [] }),
  response: z.strictObject({
    ops: ops('response'),
    if_status: z.array(z.number().int().min(100).max(599)).default([]).describe('Only responses with these statuses (empty: all)'),
  }).default({ ops: [], if_status: [] }),
  max_body_bytes: maxBodyBytes(),
});
export type JsonTransformConfig = z.infer<typeof jsonTransformConfig>;

// Between the transformers (801/800) and the response phase plugins: runs after auth, so templates see the consumer.
export const jsonTransform: PluginDefinition = { name: 'json-transform', priority: 790, configSchema: jsonTransformConfig };
