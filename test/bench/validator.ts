// request-validator's costs in-process (issue 14): compiling a schema (paid once per distinct
// schema, at write on the CP and at apply on the DP, never per request) and validating a 1 KB JSON
// body with the compiled function, beside JSON.parse of the same body for scale.
// Standalone: `node --import tsx test/bench/validator.ts`.
import { compileSchema, DRAFTS } from '../../shared/src/plugins/request-validator/compile.ts';

/** A 1 KB JSON body, as an API receives it, and a schema that accepts it. */
export function validatorFixture(): { body: string; schema: string } {
  const items: unknown[] = [];
  const doc = { request_id: 'r-1', total_count: 0, items, notes: 'x' };
  while (JSON.stringify(doc).length < 1024) items.push({ user_id: items.length, first_name: 'John', last_name: 'Doe', created_at: '2024-01-01T00:00:00Z', is_active: true });
  doc.total_count = items.length;
  const item = {
    type: 'object', required: ['user_id', 'first_name', 'created_at'],
    properties: { user_id: { type: 'integer', minimum: 0 }, first_name: { type: 'string', minLength: 1, maxLength: 100 }, last_name: { type: 'string', maxLength: 100 }, created_at: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' }, is_active: { type: 'boolean' } },
  };
  const schema = { type: 'object', required: ['request_id', 'items'], properties: { request_id: { type: 'string' }, total_count: { type: 'integer' }, items: { type: 'array', maxItems: 1000, items: item }, notes: { type: 'string' } } };
  return { body: JSON.stringify(doc), schema: JSON.stringify(schema) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface ValidatorCost {
  /** ms of the first compile per draft in a process on the CP (Ajv builds that draft's meta-schema validator then). */
  firstCompileMs: Record<string, number>;
  /** ms of the first compile per draft on a DP (no meta-schema check: the CP made it). */
  firstDpCompileMs: Record<string, number>;
  /** ms per further distinct schema (median), draft 4, on the CP and on a DP. */
  compileMs: number;
  dpCompileMs: number;
  validNs: number;
  invalidNs: number;
  parseNs: number;
}

export function validatorCost(): ValidatorCost {
  const { body, schema } = validatorFixture();
  const first = (metaSchema: boolean) => {
    const out: Record<string, number> = {};
    for (const draft of DRAFTS) {
      const t = performance.now();
      compileSchema(schema, { draft, allErrors: false, coerce: false, metaSchema });
      out[draft] = performance.now() - t;
    }
    return out;
  };
  const firstDpCompileMs = first(false);
  const firstCompileMs = first(true);
  // Distinct texts, so the cache never answers.
  const each = (metaSchema: boolean) => {
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      compileSchema(schema.replace('"maxItems":1000', `"maxItems":${2000 + i}`), { draft: 'draft4', allErrors: false, coerce: false, metaSchema });
      times.push(performance.now() - t);
    }
    return median(times);
  };
  const validate = compileSchema(schema, { draft: 'draft4', allErrors: false, coerce: false, metaSchema: false });
  const value = JSON.parse(body) as { items: { user_id: number }[] };
  const bad = structuredClone(value);
  bad.items[bad.items.length - 1].user_id = -1;
  const per = (fn: () => unknown) => {
    for (let i = 0; i < 50_000; i++) fn();
    const N = 300_000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn();
    return Number(process.hrtime.bigint() - t) / N;
  };
  if (!validate(value) || validate(bad)) throw new Error('validator bench: the fixture does not validate as expected');
  return { firstCompileMs, firstDpCompileMs, compileMs: each(true), dpCompileMs: each(false), validNs: per(() => validate(value)), invalidNs: per(() => validate(bad)), parseNs: per(() => JSON.parse(body)) };
}

export function validatorCostLine(c: ValidatorCost): string {
  const list = (r: Record<string, number>) => Object.entries(r).map(([d, ms]) => `${d} ${ms.toFixed(0)}`).join(', ');
  return `request-validator in-process: compile per distinct schema CP ${c.compileMs.toFixed(2)} ms, DP ${c.dpCompileMs.toFixed(2)} ms; first per draft and process, ms: CP (meta-schema) ${list(c.firstCompileMs)}; DP ${list(c.firstDpCompileMs)}; `
    + `validate a 1 KB body ${(c.validNs / 1000).toFixed(2)} µs valid, ${(c.invalidNs / 1000).toFixed(2)} µs invalid (JSON.parse of it ${(c.parseNs / 1000).toFixed(2)} µs)`;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(validatorCostLine(validatorCost()));
