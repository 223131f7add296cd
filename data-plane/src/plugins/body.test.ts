// The body phase's byte work: which bodies parse, multipart kept byte for byte, and decoding that
// never inflates past the cap.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync, gzipSync } from 'node:zlib';
import { decodeBody, parseRequestBody, serializeRequestBody } from './body.ts';

describe('parseRequestBody', () => {
  it('parses JSON and +json, reads an empty JSON body as {}, and reports invalid JSON', () => {
    assert.deepEqual(parseRequestBody(Buffer.from('[1,2]'), 'application/json; charset=utf-8', 'json'), { kind: 'json', value: [1, 2] });
    assert.deepEqual(parseRequestBody(Buffer.from('{"a":1}'), 'application/problem+json', 'json'), { kind: 'json', value: { a: 1 } });
    assert.deepEqual(parseRequestBody(null, 'application/json', 'json'), { kind: 'json', value: {} });
    assert.equal(parseRequestBody(Buffer.from('{"a":'), 'application/json', 'form'), 'invalid-json');
  });

  it('parses forms only for plugins that take them; other types are not-json', () => {
    assert.equal(parseRequestBody(Buffer.from('a=1'), 'application/x-www-form-urlencoded', 'json'), 'not-json');
    assert.deepEqual(parseRequestBody(Buffer.from('a=1&a=2&b=x+y'), 'application/x-www-form-urlencoded', 'form'), { kind: 'form', fields: { a: ['1', '2'], b: 'x y' } });
    assert.equal(parseRequestBody(Buffer.from('a'), 'text/plain', 'form'), 'not-json');
    assert.equal(parseRequestBody(Buffer.from('a'), undefined, 'form'), 'not-json');
    assert.equal(parseRequestBody(Buffer.from('--b\r\nbroken'), 'multipart/form-data; boundary=b', 'form'), 'not-json');
    assert.equal(parseRequestBody(Buffer.from('x'), 'multipart/form-data', 'form'), 'not-json', 'no boundary');
  });

  it('edits a multipart body\'s fields and keeps file parts byte for byte', () => {
    const file = Buffer.from([0, 13, 10, 45, 45, 255]);
    const raw = Buffer.concat([
      Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\none\r\n'),
      Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'), file,
      Buffer.from('\r\n--XyZ--\r\n'),
    ]);
    const body = parseRequestBody(raw, 'multipart/form-data; boundary="XyZ"', 'form');
    assert.ok(typeof body === 'object' && body.kind === 'multipart');
    assert.deepEqual(body.fields, { a: 'one' });
    assert.deepEqual(body.files[0].data, file);
    const fields: Record<string, string | string[]> = body.fields;
    fields.b = 'two';
    const again = parseRequestBody(serializeRequestBody(body), 'multipart/form-data; boundary=XyZ', 'form');
    assert.ok(typeof again === 'object' && again.kind === 'multipart');
    assert.deepEqual(again.fields, { a: 'one', b: 'two' });
    assert.deepEqual(again.files[0].data, file);
    assert.match(again.files[0].head, /filename="x.bin"/);
  });
});

describe('decodeBody', () => {
  it('decodes gzip and deflate, and refuses to inflate past the cap (a small bomb stays small)', () => {
    const json = Buffer.from('{"a":1}');
    assert.deepEqual(decodeBody(gzipSync(json), 'gzip', 100), json);
    assert.deepEqual(decodeBody(deflateSync(json), 'deflate', 100), json);
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024));
    assert.ok(bomb.length < 20_000);
    assert.equal(decodeBody(bomb, 'gzip', 1024), null);
    assert.equal(decodeBody(Buffer.alloc(2048), 'identity', 1024), null);
    assert.throws(() => decodeBody(Buffer.from('not gzip'), 'gzip', 100));
  });
});
