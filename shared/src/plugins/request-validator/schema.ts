import { z } from 'zod';
import { bool, httpToken, int, multiline, oneOf, text } from '../../entities/fields.ts';
import { maxBodyBytes } from '../transformer-fields.ts';
import type { PluginDefinition } from '../types.ts';
import { compileSchema, DRAFTS, MAX_SCHEMA_CHARS, SchemaError, type CompileOptions } from './compile.ts';
import { isJsonType, parseMediaType } from '../media.ts';
import { PARAM_LOCATIONS, STYLES, STYLES_BY_LOCATION } from './params.ts';

// request-validator: Kong Enterprise's fields, free (reference/edge-design.md §4c). Schemas are
// JSON text as in Kong; each is compiled here, so a schema Ajv cannot use is refused at write time
// with the JSON pointer of its problem and never reaches a data plane.

const schemaText = () => multiline(MAX_SCHEMA_CHARS);

const parameter = z.strictObject({
  name: httpToken('must be a header, query argument or path capture name').describe('The parameter\'s name (a query argument, a header, or a named capture of the route\'s regex path)'),
  in: oneOf(PARAM_LOCATIONS).describe('Where the parameter is: query, header or path'),
  required: bool().describe('Whether a request without the parameter is refused'),
  style: oneOf(STYLES).optional().describe('OpenAPI serialization style (path: simple, label, matrix; query: form, spaceDelimited, pipeDelimited, deepObject; header: simple); the location\'s default when unset'),
  explode: bool().optional().describe('OpenAPI explode: lists and maps as separate values (true by default for form, false otherwise)'),
  schema: schemaText().optional().describe('JSON Schema (text) the value is checked against, after coercion from text to its types'),
});
export type ParameterSpec = z.infer<typeof parameter>;

export const requestValidatorConfig = z.strictObject({
  body_schema: schemaText().meta({ example: '{"type":"object"}' }).optional().describe('JSON Schema (text) of the request body. One of body_schema and parameter_schema is required'),
  parameter_schema: z.array(parameter).max(64).optional().describe('Parameters checked: query arguments, headers and path captures. One of body_schema and parameter_schema is required'),
  allowed_content_types: z.array(text(256)).max(32).default(['application/json'])
    .describe('Content types a request with body_schema may have (JSON types, with parameters such as charset=utf-8); others are refused with "specified Content-Type is not allowed"'),
  content_type_parameter_validation: bool().default(true).describe('Whether the Content-Type\'s parameters (charset=…) must match an allowed type\'s exactly'),
  version: oneOf(DRAFTS).default('draft4').describe('JSON Schema draft of the schemas: draft4 (Kong\'s), draft7, draft2019-09 or draft2020-12'),
  verbose_response: bool().default(false).describe('Whether a refusal lists what failed (at most 10 errors, with JSON pointers)'),
  status_code: int(400, 499).default(400).describe('Status of a refusal (400 as Kong; 422 as Tyk)'),
  max_body_bytes: maxBodyBytes().describe('Most body bytes validated; a larger body is refused (413)'),
}).superRefine((c, ctx) => {
  if (c.body_schema === undefined && (c.parameter_schema === undefined || c.parameter_schema.length === 0)) {
    ctx.addIssue({ code: 'custom', message: 'at least one of these fields must be non-empty: \'config.body_schema\', \'config.parameter_schema\'' });
  }
  const check = (schema: string, path: (string | number)[], o: CompileOptions) => {
    try { compileSchema(schema, o); } catch (err) {
      if (!(err instanceof SchemaError)) throw err;
      ctx.addIssue({ code: 'custom', path, message: err.message });
    }
  };
  if (c.body_schema !== undefined) check(c.body_schema, ['body_schema'], bodyCompileOptions(c, true));
  c.parameter_schema?.forEach((p, i) => {
    if (p.style !== undefined && !STYLES_BY_LOCATION[p.in].includes(p.style)) {
      ctx.addIssue({ code: 'custom', path: ['parameter_schema', i, 'style'], message: `expected one of: ${STYLES_BY_LOCATION[p.in].join(', ')} (for a ${p.in} parameter)` });
    }
    if (p.schema !== undefined) check(p.schema, ['parameter_schema', i, 'schema'], paramCompileOptions(c, true));
  });
  c.allowed_content_types.forEach((t, i) => {
    const m = parseMediaType(t);
    if (m === null || !isJsonType(m.type)) ctx.addIssue({ code: 'custom', path: ['allowed_content_types', i], message: 'expected a JSON media type (application/json or application/*+json), parameters allowed' });
  });
}).meta({ entity_checks: [{ at_least_one_of: ['config.body_schema', 'config.parameter_schema'] }] });
export type RequestValidatorConfig = z.infer<typeof requestValidatorConfig>;

/** How a config's schemas compile: `metaSchema` on the CP (write time), off on a DP (apply; see CompileOptions). */
export const bodyCompileOptions = (c: RequestValidatorConfig, metaSchema: boolean): CompileOptions => ({ draft: c.version, allErrors: c.verbose_response, coerce: false, metaSchema });
export const paramCompileOptions = (c: RequestValidatorConfig, metaSchema: boolean): CompileOptions => ({ draft: c.version, allErrors: c.verbose_response, coerce: true, metaSchema });

// Kong's PRIORITY: after authentication (so a refusal is not an oracle for anonymous callers), before acl.
export const requestValidator: PluginDefinition = { name: 'request-validator', priority: 999, configSchema: requestValidatorConfig };
