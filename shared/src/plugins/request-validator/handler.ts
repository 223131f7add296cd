// request-validator: parameters and the Content-Type are checked in the access phase, the JSON body
// in the body phase (declared strict: a body that cannot be read is refused, never streamed past
// the check). Every validator was compiled when the snapshot was applied (init); a request only
// runs compiled functions.
import type { ValidateFunction } from 'ajv';
import type { AccessResult, BodyNeeds, Exit, PluginHandler, ProxyContext } from '../types.ts';
import { parseMediaType, type MediaType } from '../media.ts';
import { compileSchema, describeErrors, parseSchema, type ValidationError } from './compile.ts';
import { defaultExplode, parseQueryParam, parseSimpleLike, shapeOf, STYLES_BY_LOCATION, type ParamLocation, type ParamSpec, type ParamValue } from './params.ts';
import { bodyCompileOptions, paramCompileOptions, requestValidator, type RequestValidatorConfig } from './schema.ts';

// Kong Enterprise's messages.
export const BODY_INVALID = 'request body doesn\'t conform to schema';
export const PARAM_INVALID = 'request param doesn\'t conform to schema';
export const CONTENT_TYPE_INVALID = 'specified Content-Type is not allowed';

interface ParamCheck {
  spec: ParamSpec;
  in: ParamLocation;
  required: boolean;
  /** Lower-case, for headers. */
  key: string;
  validate: ValidateFunction | null;
  /** An exploded form object's keys: the schema's properties, or null for every argument. */
  objectKeys: string[] | null;
}

interface State {
  params: ParamCheck[];
  body: ValidateFunction | null;
  allowed: MediaType[];
  needs: BodyNeeds;
}

/** A value present but not in its style's form (a `label` path value without its leading dot). */
const MALFORMED = Symbol('malformed');

function compileParam(p: NonNullable<RequestValidatorConfig['parameter_schema']>[number], config: RequestValidatorConfig): ParamCheck {
  const schema = p.schema === undefined ? undefined : parseSchema(p.schema);
  const style = p.style ?? STYLES_BY_LOCATION[p.in][0];
  const properties = (schema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return {
    spec: { name: p.name, style, explode: p.explode ?? defaultExplode(style), shape: shapeOf(schema) },
    in: p.in,
    required: p.required,
    key: p.name.toLowerCase(),
    validate: p.schema === undefined ? null : compileSchema(p.schema, paramCompileOptions(config, false)),
    objectKeys: properties && typeof properties === 'object' ? Object.keys(properties) : null,
  };
}

function readParam(ctx: ProxyContext, c: ParamCheck): ParamValue | undefined | typeof MALFORMED {
  let text: string | undefined;
  switch (c.in) {
    case 'query': return ctx.hasQuery() ? parseQueryParam(ctx.query(), c.spec, c.objectKeys) : undefined;
    case 'header': { const h = ctx.headers[c.key]; text = Array.isArray(h) ? h.join(',') : h; break; }
    case 'path': text = ctx.uriCaptures?.named[c.spec.name]; break;
  }
  if (text === undefined) return undefined;
  return parseSimpleLike(text, c.spec) ?? MALFORMED;
}

function refuse(ctx: ProxyContext, config: RequestValidatorConfig, message: string, errors: ValidationError[]): Exit {
  if (!config.verbose_response) return { status: config.status_code, message };
  return { status: config.status_code, json: { message, errors, request_id: ctx.requestId } };
}

/** Kong's Content-Type rule: the media type, and with content_type_parameter_validation its parameters, as one allowed entry. */
function contentTypeAllowed(header: string | undefined, allowed: MediaType[], withParams: boolean): boolean {
  if (header === undefined) return false;
  const m = parseMediaType(header);
  if (m === null) return false;
  return allowed.some((a) => {
    if (a.type !== m.type) return false;
    if (!withParams) return true;
    const names = Object.keys(a.params);
    return names.length === Object.keys(m.params).length && names.every((n) => m.params[n] === a.params[n]);
  });
}

export const requestValidatorHandler: PluginHandler<RequestValidatorConfig, State> = {
  name: requestValidator.name,
  priority: requestValidator.priority,
  init(config) {
    const body = config.body_schema === undefined ? null : compileSchema(config.body_schema, bodyCompileOptions(config, false));
    return {
      params: (config.parameter_schema ?? []).map((p) => compileParam(p, config)),
      body,
      allowed: config.allowed_content_types.map((t) => parseMediaType(t)!),
      needs: { request: body === null ? null : 'json', response: false, maxBytes: config.max_body_bytes, strict: true },
    };
  },
  access: function requestValidatorAccess(ctx, config, state): AccessResult {
    for (const c of state.params) {
      const value = readParam(ctx, c);
      if (value === undefined) {
        if (c.required) return refuse(ctx, config, PARAM_INVALID, [{ in: c.in, name: c.spec.name, pointer: '', keyword: 'required', message: 'is required' }]);
        continue;
      }
      if (value === MALFORMED) return refuse(ctx, config, PARAM_INVALID, [{ in: c.in, name: c.spec.name, pointer: '', keyword: 'style', message: `is not in ${c.spec.style} style` }]);
      if (c.validate !== null && !c.validate(value)) return refuse(ctx, config, PARAM_INVALID, describeErrors(c.validate.errors, c.in, c.spec.name));
    }
    if (state.body !== null && !contentTypeAllowed(ctx.headers['content-type'], state.allowed, config.content_type_parameter_validation)) {
      return refuse(ctx, config, CONTENT_TYPE_INVALID, [{ in: 'header', name: 'content-type', pointer: '', keyword: 'allowed_content_types', message: CONTENT_TYPE_INVALID }]);
    }
    return undefined;
  },
  body: {
    needs: (_config, state) => state.needs,
    request: function requestValidatorBody(ctx, body, config, state) {
      const validate = state.body!;
      try {
        if (body.kind === 'json' && validate(body.value)) return false;
      } catch (err) {
        // A recursive schema ($ref to itself) walks as deep as the body goes: a body nested
        // deeper than the stack allows is refused, not a 500.
        if (!(err instanceof RangeError)) throw err;
        return refuse(ctx, config, BODY_INVALID, [{ in: 'body', pointer: '', keyword: 'depth', message: 'nested too deeply to validate' }]);
      }
      return refuse(ctx, config, BODY_INVALID, describeErrors(validate.errors, 'body'));
    },
  },
};
