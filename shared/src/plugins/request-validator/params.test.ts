import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultExplode, parseQueryParam, parseSimpleLike, STYLES_BY_LOCATION, type ParamSpec, type ParamValue, type Shape, type Style } from './params.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);

// The oracle: OpenAPI 3.1 §4.8.12.4 "Style Examples", written from the table, not from params.ts.
function serializeSimpleLike(v: ParamValue, s: ParamSpec): string {
  const list = (items: string[], sep: string) => items.join(sep);
  const obj = (o: Record<string, string>, explode: boolean, sep: string) =>
    Object.entries(o).map(([k, x]) => (explode ? `${k}=${x}` : `${k},${x}`)).join(explode ? sep : ',');
  const body = (sep: string): string => typeof v === 'string' ? v : Array.isArray(v) ? list(v, s.explode ? sep : ',') : obj(v, s.explode, sep);
  switch (s.style) {
    case 'label': return `.${body('.')}`;
    case 'matrix':
      if (typeof v === 'string') return `;${s.name}=${v}`;
      if (Array.isArray(v)) return s.explode ? v.map((x) => `;${s.name}=${x}`).join('') : `;${s.name}=${v.join(',')}`;
      return s.explode ? Object.entries(v).map(([k, x]) => `;${k}=${x}`).join('') : `;${s.name}=${obj(v, false, ',')}`;
    default: return body(',');
  }
}

function serializeQuery(v: ParamValue, s: ParamSpec): URLSearchParams {
  const q = new URLSearchParams();
  const sep = s.style === 'spaceDelimited' ? ' ' : s.style === 'pipeDelimited' ? '|' : ',';
  if (s.style === 'deepObject') for (const [k, x] of Object.entries(v)) q.append(`${s.name}[${k}]`, x);
  else if (typeof v === 'string') q.append(s.name, v);
  else if (Array.isArray(v)) { if (s.explode) for (const x of v) q.append(s.name, x); else q.append(s.name, v.join(sep)); }
  else if (s.explode) for (const [k, x] of Object.entries(v)) q.append(k, x);
  else q.append(s.name, Object.entries(v).flat().join(sep));
  return q;
}

// Values that hold none of the delimiters (a value containing one is ambiguous in OpenAPI itself).
const atom = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_~'), minLength: 1, maxLength: 6 });
const name = fc.constantFrom('id', 'color', 'x-trace');
const value = (shape: Shape): fc.Arbitrary<ParamValue> =>
  shape === 'primitive' ? atom : shape === 'array' ? fc.array(atom, { minLength: 1, maxLength: 5 })
    : fc.dictionary(atom, atom, { minKeys: 1, maxKeys: 4 }).map((o) => Object.assign(Object.create(null) as Record<string, string>, o));

const norm = (v: ParamValue | undefined) => (v !== undefined && typeof v === 'object' && !Array.isArray(v) ? { ...v } : v);

describe('parameter parsing (OpenAPI style/explode)', () => {
  it('reads back every path and header value serialized in its style', () => {
    const styles = [...new Set([...STYLES_BY_LOCATION.path, ...STYLES_BY_LOCATION.header])];
    const arb = fc.record({ style: fc.constantFrom(...styles), explode: fc.boolean(), shape: fc.constantFrom<Shape>('primitive', 'array', 'object'), name })
      .chain((s) => fc.tuple(fc.constant(s as ParamSpec), value(s.shape)));
    fc.assert(fc.property(arb, ([spec, v]) => {
      assert.deepEqual(norm(parseSimpleLike(serializeSimpleLike(v, spec), spec)), norm(v));
    }), { numRuns: RUNS });
  });

  it('reads back every query value serialized in its style', () => {
    const arb = fc.record({ style: fc.constantFrom<Style>('form', 'spaceDelimited', 'pipeDelimited', 'deepObject'), explode: fc.boolean(), shape: fc.constantFrom<Shape>('primitive', 'array', 'object'), name })
      // The combinations OpenAPI defines (its table says n/a for the others).
      .filter((s) => (s.style === 'deepObject' ? s.shape === 'object' : s.style === 'form' || (s.shape === 'array' || (s.shape === 'object' && !s.explode))))
      .chain((s) => fc.tuple(fc.constant(s as ParamSpec), value(s.shape)));
    fc.assert(fc.property(arb, ([spec, v]) => {
      const keys = typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : null;
      assert.deepEqual(norm(parseQueryParam(serializeQuery(v, spec), spec, keys)), norm(v));
    }), { numRuns: RUNS });
  });

  it('never throws on arbitrary text, and says when a value lacks its style\'s prefix', () => {
    const arb = fc.tuple(fc.string({ maxLength: 40 }), fc.constantFrom<Style>('simple', 'label', 'matrix'), fc.boolean(), fc.constantFrom<Shape>('primitive', 'array', 'object'));
    fc.assert(fc.property(arb, ([text, style, explode, shape]) => {
      const r = parseSimpleLike(text, { name: 'id', style, explode, shape });
      if (style === 'label' && !text.startsWith('.')) assert.equal(r, undefined);
      if (style === 'matrix' && !text.startsWith(';')) assert.equal(r, undefined);
    }), { numRuns: RUNS });
  });

  it('an absent query parameter is undefined, an exploded form object takes only its properties', () => {
    const spec: ParamSpec = { name: 'c', style: 'form', explode: defaultExplode('form'), shape: 'object' };
    assert.equal(parseQueryParam(new URLSearchParams('x=1'), spec, ['r', 'g']), undefined);
    assert.deepEqual({ ...parseQueryParam(new URLSearchParams('r=1&g=2&x=3'), spec, ['r', 'g']) as object }, { r: '1', g: '2' });
    assert.equal(parseQueryParam(new URLSearchParams('a=1'), { name: 'b', style: 'pipeDelimited', explode: false, shape: 'array' }, null), undefined);
  });
});
