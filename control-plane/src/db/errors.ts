// Postgres errors by SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html), read
// the same way from node-postgres and PGlite, through drizzle's DrizzleQueryError wrapper. This is
// the one place that decides which database failures are the client's doing: those become a 4xx
// with Kong's body; anything else stays a 500.
import { AdminError, ErrorCode } from '@portico/shared';

export const SQLSTATE = {
  RESTRICT_VIOLATION: '23001',
  NOT_NULL_VIOLATION: '23502',
  FOREIGN_KEY_VIOLATION: '23503',
  UNIQUE_VIOLATION: '23505',
  CHECK_VIOLATION: '23514',
  STRING_DATA_RIGHT_TRUNCATION: '22001',
  NUMERIC_VALUE_OUT_OF_RANGE: '22003',
  CHARACTER_NOT_IN_REPERTOIRE: '22021',
  INVALID_TEXT_REPRESENTATION: '22P02',
  UNTRANSLATABLE_CHARACTER: '22P05',
  STATEMENT_TOO_COMPLEX: '54001',
  PROGRAM_LIMIT_EXCEEDED: '54000',
} as const;

export interface PgError {
  code: string;
  constraint?: string;
  table?: string;
  column?: string;
  message: string;
}

/** The Postgres error inside `err` (drizzle wraps it as `cause`), or undefined for any other error. */
export function pgErrorOf(err: unknown): PgError | undefined {
  for (let e: unknown = err, i = 0; e && typeof e === 'object' && i < 4; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return e as PgError;
  }
  return undefined;
}

/** `update or delete on table "services" violates … on table "routes"`: the referencing table. */
function referencingTable(pg: PgError): string | undefined {
  if (pg.table) return pg.table;
  return /on table "([^"]+)"\s*$/.exec(pg.message)?.[1];
}

/**
 * Kong's answer for a database error the client caused, or undefined when the error is ours.
 * `entity` names the collection written, for a delete that something still references.
 */
export function clientError(err: unknown, entity?: string): AdminError | undefined {
  const pg = pgErrorOf(err);
  if (!pg) return undefined;
  switch (pg.code) {
    case SQLSTATE.RESTRICT_VIOLATION:
    case SQLSTATE.FOREIGN_KEY_VIOLATION: {
      // A delete that a RESTRICT key refuses (Kong: routes → services); writes check their own
      // references before inserting, so this is the delete side.
      const by = referencingTable(pg);
      if (entity && by && by !== entity) {
        return AdminError.of(400, ErrorCode.FOREIGN_KEY_VIOLATION, `an existing '${by}' entity references this '${entity}' entity`,
          { fields: { '@referenced_by': by } });
      }
      return AdminError.of(400, ErrorCode.FOREIGN_KEY_VIOLATION, 'foreign key violation', { fields: {} });
    }
    case SQLSTATE.UNIQUE_VIOLATION:
      return AdminError.of(409, ErrorCode.UNIQUE_VIOLATION, `UNIQUE violation detected on '${pg.constraint ?? 'unknown'}'`, { fields: {} });
    case SQLSTATE.NOT_NULL_VIOLATION:
      return schemaError(pg.column, 'required field missing');
    case SQLSTATE.CHECK_VIOLATION:
      return schemaError(pg.column, `failed check '${pg.constraint ?? 'unknown'}'`);
    case SQLSTATE.STRING_DATA_RIGHT_TRUNCATION:
      return schemaError(pg.column, 'value too long');
    case SQLSTATE.NUMERIC_VALUE_OUT_OF_RANGE:
      return schemaError(pg.column, 'value out of range');
    case SQLSTATE.CHARACTER_NOT_IN_REPERTOIRE:
    case SQLSTATE.UNTRANSLATABLE_CHARACTER:
      return schemaError(pg.column, 'invalid character (NUL or invalid UTF-8)');
    case SQLSTATE.INVALID_TEXT_REPRESENTATION:
      return schemaError(pg.column, 'invalid value');
    case SQLSTATE.STATEMENT_TOO_COMPLEX:
    case SQLSTATE.PROGRAM_LIMIT_EXCEEDED:
      return AdminError.of(400, ErrorCode.SCHEMA_VIOLATION, 'schema violation (value too large or too deeply nested)', { fields: {} });
    default:
      // Class 22 is "data exception": always about a value the statement carried.
      if (pg.code.startsWith('22')) return schemaError(pg.column, 'invalid value');
      return undefined;
  }
}

function schemaError(column: string | undefined, message: string): AdminError {
  const field = column ?? '@entity';
  return AdminError.of(400, ErrorCode.SCHEMA_VIOLATION, `schema violation (${column ? `${column}: ` : ''}${message})`,
    { fields: column ? { [field]: message } : { '@entity': [message] } });
}
