// Kong's vault references, so secrets can stay out of Postgres, snapshots and the DP's disk cache
// (ARCHITECTURE.md invariant 8). A field its schema marks `referenceable` (Kong's word) whose value
// is `{vault://env/NAME}` is resolved on the data plane, from its own environment, when a snapshot
// is compiled; any other field keeps such a string as it is. As Kong's env vault with a `prefix`,
// NAME is upper-cased with `-` read as `_` and prefixed with PORTICO_VAULT_
// (`{vault://env/redis-pass}` → PORTICO_VAULT_REDIS_PASS): a config writer can reach only the
// variables an operator put there for it, never the node's own settings (PORTICO_ADMIN_TOKEN,
// DATABASE_URL, …). `{vault://env/NAME/key}` reads `key` from a JSON object held in that variable.
// Only the `env` vault exists here; any other is an error, as is a variable that is not set: an
// unresolvable reference rejects the snapshot (reported in last_error), never a silent empty string.
import { z } from 'zod';

/** The only environment variables a reference can read start with this. */
export const VAULT_ENV_PREFIX = 'PORTICO_VAULT_';

const REFERENCE = /^\{vault:\/\/([a-z][a-z0-9-]*)\/([A-Za-z0-9_.-]+)(?:\/([A-Za-z0-9_.-]+))?\}$/;

export function isReference(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('{vault://');
}

/** The problem with a reference's syntax, or null when it is well-formed. */
export function referenceError(value: string): string | null {
  const m = REFERENCE.exec(value);
  if (!m) return `'${value}' is not a vault reference ({vault://env/NAME} or {vault://env/NAME/json-key})`;
  if (m[1] !== 'env') return `vault '${m[1]}' is not supported (only env)`;
  return null;
}

function resolveOne(value: string, env: NodeJS.ProcessEnv): string {
  const bad = referenceError(value);
  if (bad) throw new Error(bad);
  const [, , name, key] = REFERENCE.exec(value)!;
  const variable = VAULT_ENV_PREFIX + name.toUpperCase().replace(/-/g, '_');
  const raw = env[variable];
  if (raw === undefined) throw new Error(`${value}: environment variable ${variable} is not set on this node`);
  if (key === undefined) return raw;
  let doc: unknown;
  try { doc = JSON.parse(raw); } catch { throw new Error(`${value}: ${variable} does not hold a JSON object`); }
  const v = doc && typeof doc === 'object' && Object.hasOwn(doc, key) ? (doc as Record<string, unknown>)[key] : undefined;
  if (typeof v !== 'string') throw new Error(`${value}: ${variable} has no string field '${key}'`);
  return v;
}

type Path = readonly string[];
const pathsBySchema = new WeakMap<z.ZodType, Path[]>();

/** The paths of the fields `schema` marks referenceable (object keys only), found once per schema. */
export function referenceablePaths(schema: z.ZodType): Path[] {
  let paths = pathsBySchema.get(schema);
  if (paths) return paths;
  paths = [];
  const walk = (node: z.ZodType, at: string[]): void => {
    let s = node as unknown as { _zod: { def: { type: string; innerType?: z.ZodType; in?: z.ZodType; shape?: Record<string, z.ZodType> } } };
    for (;;) {
      if ((z.globalRegistry.get(s as unknown as z.ZodType) as { referenceable?: boolean } | undefined)?.referenceable) { paths!.push(at); return; }
      const d = s._zod.def;
      if (d.type === 'default' || d.type === 'prefault' || d.type === 'optional' || d.type === 'nullable') s = d.innerType as never;
      else if (d.type === 'pipe') s = d.in as never;
      else break;
    }
    const shape = s._zod.def.shape;
    if (s._zod.def.type === 'object' && shape) for (const [k, v] of Object.entries(shape)) walk(v, [...at, k]);
  };
  walk(schema, []);
  pathsBySchema.set(schema, paths);
  return paths;
}

/**
 * `value` with the references at `paths` resolved (a copy along each changed path; the input is not
 * changed). Strings elsewhere are data, whatever they look like. Throws naming the field.
 */
export function resolveAt<T>(value: T, paths: readonly Path[], env: NodeJS.ProcessEnv): T {
  let out = value;
  for (const path of paths) {
    const at = (node: unknown, i: number): unknown => {
      if (i === path.length) {
        if (!isReference(node)) return node;
        try { return resolveOne(node, env); } catch (err) { throw new Error(`${path.join('.')}: ${(err as Error).message}`); }
      }
      if (node === null || typeof node !== 'object' || !Object.hasOwn(node, path[i])) return node;
      const child = (node as Record<string, unknown>)[path[i]];
      const next = at(child, i + 1);
      return next === child ? node : { ...(node as Record<string, unknown>), [path[i]]: next };
    };
    out = at(out, 0) as T;
  }
  return out;
}
