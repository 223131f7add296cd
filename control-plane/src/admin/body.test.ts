import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { routeSchema, serviceSchema } from '@portico/shared';
import { coerce, nestFormPairs } from './body.ts';

describe('form bodies (Kong coercion)', () => {
  it('nests dotted and bracketed keys', () => {
    assert.deepEqual(nestFormPairs([['service.id', 'x'], ['config.minute', '5'], ['headers[x-a][]', '1'], ['headers.x-a[]', '2']]),
      { service: { id: 'x' }, config: { minute: '5' }, headers: { 'x-a': ['1', '2'] } });
  });
  it('orders indexed arrays by index', () => {
    assert.deepEqual(nestFormPairs([['paths[2]', '/b'], ['paths[1]', '/a']]), { paths: ['/a', '/b'] });
  });
  it('coerces numbers, booleans, empty strings and single values against the schema', () => {
    const raw = nestFormPairs([['port', '8080'], ['enabled', 'false'], ['path', ''], ['tags', 'one']]);
    assert.deepEqual(coerce(serviceSchema, raw), { port: 8080, enabled: false, path: null, tags: ['one'] });
    assert.deepEqual(coerce(routeSchema, nestFormPairs([['https_redirect_status_code', '301'], ['methods', 'GET']])), { https_redirect_status_code: 301, methods: ['GET'] });
  });
  it('leaves non-numeric strings for the schema to reject', () => {
    assert.deepEqual(coerce(serviceSchema, { port: 'eighty' }), { port: 'eighty' });
  });
});
