// Kong's admin error catalogue (reference/kong-compat.md §1.7): one shape, stable codes.
import type { z } from 'zod';

export const ErrorCode = {
  INVALID_PRIMARY_KEY: 1,
  SCHEMA_VIOLATION: 2,
  PRIMARY_KEY_VIOLATION: 3,
  FOREIGN_KEY_VIOLATION: 4,
  UNIQUE_VIOLATION: 5,
  NOT_FOUND: 6,
  INVALID_OFFSET: 7,
  INVALID_SIZE: 9,
  INVALID_OPTIONS: 11,
  OPERATION_UNSUPPORTED: 12,
  FOREIGN_KEYS_UNRESOLVED: 13,
  INVALID_DECLARATIVE_CONFIG: 14,
} as const;

const NAMES: Record<number, string> = {
  1: 'invalid primary key', 2: 'schema violation', 3: 'primary key violation',
  4: 'foreign key violation', 5: 'unique constraint violation', 6: 'not found',
  7: 'invalid offset', 9: 'invalid size', 11: 'invalid options', 12: 'operation unsupported',
  13: 'foreign keys unresolved', 14: 'invalid declarative configuration',
};

export interface AdminErrorBody {
  code?: number;
  name?: string;
  message: string;
  fields?: unknown;
  options?: unknown;
}

/** An admin API failure carrying the HTTP status and Kong's body. Thrown by services, answered by one handler. */
export class AdminError extends Error {
  constructor(public readonly status: number, public readonly body: AdminErrorBody) {
    super(body.message);
    this.name = 'AdminError';
  }

  static of(status: number, code: number, message: string, extra: Partial<AdminErrorBody> = {}): AdminError {
    return new AdminError(status, { code, name: NAMES[code], message, ...extra });
  }

  static message(status: number, message: string): AdminError {
    return new AdminError(status, { message });
  }
}

export type FieldErrors = Record<string, unknown>;

/** A flat list of (path, message) pairs, as Kong collects schema errors. */
export type Violation = { path: (string | number)[]; message: string };

export function violationsFromZod(error: z.ZodError): Violation[] {
  const out: Violation[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push({ path: [...issue.path as (string | number)[], k], message: 'unknown field' });
    } else if (issue.code === 'invalid_union') {
      out.push({ path: issue.path as (string | number)[], message: issue.message });
    } else {
      out.push({ path: issue.path as (string | number)[], message: issue.message });
    }
  }
  return out;
}

// Field paths name client keys, so `fields` is built from own properties only: a path such as
// `__proto__.x` or `constructor` must land in the error body, never on a prototype.
const own = (node: object, k: string | number): unknown => (Object.hasOwn(node, k) ? (node as Record<string, unknown>)[k] : undefined);
const define = (node: object, k: string | number, value: unknown) =>
  Object.defineProperty(node, k, { value, enumerable: true, writable: true, configurable: true });

export function setPath(target: Record<string, unknown>, path: (string | number)[], message: string): void {
  let node: object = target;
  for (let i = 0; i < path.length; i++) {
    const key = Array.isArray(node) ? path[i] : String(path[i]);
    const last = i === path.length - 1;
    const current = own(node, key);
    if (last) { if (current === undefined) define(node, key, message); return; }
    if (typeof current !== 'object' || current === null) {
      const child = typeof path[i + 1] === 'number' ? [] : {};
      define(node, key, child);
      node = child;
    } else {
      node = current;
    }
  }
}

function dotted(path: (string | number)[]): string {
  // Kong numbers array elements from 1 in messages (`protocols.1: …`).
  return path.map((p) => (typeof p === 'number' ? String(p + 1) : p)).join('.');
}

/** Kong's schema-violation error (code 2): message lists each violation, `fields` mirrors the input. */
export function schemaViolation(violations: Violation[]): AdminError {
  const entity = violations.filter((v) => v.path[0] === '@entity');
  const rest = violations.filter((v) => v.path[0] !== '@entity')
    .sort((a, b) => dotted(a.path).localeCompare(dotted(b.path)));
  const fields: FieldErrors = {};
  if (entity.length) fields['@entity'] = entity.map((v) => v.message);
  for (const v of rest) setPath(fields, v.path.length ? v.path : ['@entity'], v.message);
  const parts = [...entity.map((v) => v.message), ...rest.map((v) => `${dotted(v.path)}: ${v.message}`)];
  const message = parts.length === 1
    ? `schema violation (${parts[0]})`
    : `${parts.length} schema violations (${parts.join('; ')})`;
  return AdminError.of(400, ErrorCode.SCHEMA_VIOLATION, message, { fields });
}

/** Render a Lua-table-like key as Kong prints it in messages: `{name="foo"}`. */
export function luaKey(obj: Record<string, unknown>): string {
  const render = (v: unknown): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'object') return luaKey(v as Record<string, unknown>);
    if (typeof v === 'string') return `"${v}"`;
    return String(v);
  };
  return '{' + Object.keys(obj).sort().map((k) => `${k}=${render(obj[k])}`).join(',') + '}';
}
