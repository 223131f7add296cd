// The SQLSTATE table: which database errors are the client's (a 4xx in Kong's shape) and which
// stay ours (undefined → the handler's 500). Errors are shaped as node-postgres and PGlite raise
// them, wrapped by drizzle as `cause`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientError, pgErrorOf, SQLSTATE } from './errors.ts';

const wrapped = (fields: Record<string, unknown>) => Object.assign(new Error('Failed query: …'), { cause: Object.assign(new Error(String(fields.message ?? 'pg')), fields) });

describe('database errors by SQLSTATE', () => {
  it("answers a delete that RESTRICT refuses with Kong's 400 code 4, from the table field or the message", () => {
    for (const code of [SQLSTATE.RESTRICT_VIOLATION, SQLSTATE.FOREIGN_KEY_VIOLATION]) {
      const viaTable = clientError(wrapped({ code, table: 'routes' }), 'services');
      assert.deepEqual([viaTable?.status, viaTable?.body], [400, {
        code: 4, name: 'foreign key violation', message: "an existing 'routes' entity references this 'services' entity", fields: { '@referenced_by': 'routes' },
      }]);
      const viaMessage = clientError(wrapped({ code, message: 'update or delete on table "services" violates RESTRICT setting of foreign key constraint "x" on table "routes"' }), 'services');
      assert.deepEqual(viaMessage?.body.fields, { '@referenced_by': 'routes' });
    }
  });

  it('maps not-null, check, too long, out of range, NUL and bad text to 400 schema violations', () => {
    const cases: [string, string | undefined, string][] = [
      [SQLSTATE.NOT_NULL_VIOLATION, 'host', 'required field missing'],
      [SQLSTATE.CHECK_VIOLATION, undefined, "failed check 'c'"],
      [SQLSTATE.STRING_DATA_RIGHT_TRUNCATION, 'name', 'value too long'],
      [SQLSTATE.NUMERIC_VALUE_OUT_OF_RANGE, 'port', 'value out of range'],
      [SQLSTATE.CHARACTER_NOT_IN_REPERTOIRE, undefined, 'invalid character (NUL or invalid UTF-8)'],
      [SQLSTATE.UNTRANSLATABLE_CHARACTER, undefined, 'invalid character (NUL or invalid UTF-8)'],
      [SQLSTATE.INVALID_TEXT_REPRESENTATION, undefined, 'invalid value'],
      ['22007', undefined, 'invalid value'],
    ];
    for (const [code, column, message] of cases) {
      const e = clientError(wrapped({ code, column, constraint: 'c' }));
      assert.equal(e?.status, 400, code);
      assert.equal(e?.body.code, 2);
      assert.deepEqual(e?.body.fields, column ? { [column]: message } : { '@entity': [message] }, code);
    }
    assert.equal(clientError(wrapped({ code: SQLSTATE.UNIQUE_VIOLATION, constraint: 'x_unique' }))?.status, 409);
  });

  it('leaves server-side failures and non-database errors to the 500 handler', () => {
    for (const code of ['08006', '53300', '57P01', '40001', 'XX000']) assert.equal(clientError(wrapped({ code })), undefined, code);
    assert.equal(clientError(new TypeError('x')), undefined);
    assert.equal(pgErrorOf({ code: 'ECONNREFUSED' }), undefined, 'a Node error code is not a SQLSTATE');
  });
});
