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

export const OPS = ['unwrap', 'allow', 'deny', 'rename', 'set', 'case', 'wrap'] as const;
/** The fields each op requires; any other field set is refused, so a typo never passes silently. */
const FIELDS: Record<(typeof OPS)[number], { required: string[]; optional: string[] }> = {
  unwrap: { required: ['path'], optional: [] },
  allow: { required: ['paths'], optional: [] },
  deny: { required: ['paths'], optional: [] },
  rename: { required: ['from', 'to'], optional: [] },
  set: { required: ['path'], optional: ['value', 'template', 'type'] },
  case: { required: ['keys'], optional: ['exclude'] },
  wrap: { required: ['key'], optional: ['meta'] },
};

// One record with every op's fields (not a union of records) so GET /schemas/plugins/json-transform
// can describe it in Kong's field-list shape; which fields an op takes is checked below.
const op = z.strictObject({
  op: z.enum(OPS).describe('The operation: unwrap, allow, deny, rename, set, case or wrap'),
  path: path().optional().describe('unwrap: the value that becomes the body; set: where the value goes'),
  paths: z.array(path()).min(1).optional().describe('allow: only what these reach is kept; deny: these are removed'),
  from: nonRootPath().optional().describe('rename: the value moved'),
  to: nonRootPath().optional().describe('rename: its new place (a key in the same object, or anywhere)'),
  value: z.unknown().optional().describe('set: a JSON value'),
  template: templateText().optional().describe('set: a template ($(headers.x), $(consumer.username), $(jwt.claim.sub), …) rendered per request'),
  type: valueType().optional().describe('set: how a rendered template is written (string by default)'),
  keys: z.enum(CASES).optional().describe('case: the key case every key is converted to (deep)'),
  exclude: z.array(path()).optional().describe('case: values whose own keys are data (maps of ids, labels), left as they are'),
  key: text().min(1).optional().describe('wrap: the envelope key'),
  meta: z.record(z.string(), z.unknown()).optional().describe('wrap: extra keys beside the wrapped body'),
}).superRefine((o, ctx) => {
  const f = FIELDS[o.op];
  for (const name of f.required) if ((o as Record<string, unknown>)[name] === undefined) ctx.addIssue({ code: 'custom', path: [name], message: `required for op '${o.op}'` });
  for (const [name, v] of Object.entries(o)) {
    if (name !== 'op' && v !== undefined && !f.required.includes(name) && !f.optional.includes(name)) ctx.addIssue({ code: 'custom', path: [name], message: `not used by op '${o.op}'` });
  }
  if (o.op === 'set' && (o.value === undefined) === (o.template === undefined)) ctx.addIssue({ code: 'custom', message: 'exactly one of value and template is required' });
  if (o.op === 'set' && o.type !== undefined && o.template === undefined) ctx.addIssue({ code: 'custom', path: ['type'], message: 'applies to a template only' });
  if ((o.op === 'unwrap' || o.op === 'set') && o.path === '$') ctx.addIssue({ code: 'custom', path: ['path'], message: 'must name a key, not the root ($)' });
  if (o.op === 'deny') o.paths?.forEach((p, i) => { if (p === '$') ctx.addIssue({ code: 'custom', path: ['paths', i], message: 'must name a key, not the root ($)' }); });
});
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
