// Kong's vault references, so secrets can stay out of Postgres, snapshots and the DP's disk cache
// (ARCHITECTURE.md invariant 8). A config string that is exactly `{vault://env/NAME}` is resolved
// on the data plane, from its own environment, when a snapshot is compiled: as Kong's env vault,
// NAME is upper-cased with `-` read as `_` (`{vault://env/redis-pass}` → REDIS_PASS), and
// `{vault://env/NAME/key}` reads `key` from a JSON object held in that variable. Only the `env`
// vault exists here; any other is an error, as is a variable that is not set: an unresolvable
// reference rejects the snapshot (reported in last_error), never a silent empty string.

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
  const variable = name.toUpperCase().replace(/-/g, '_');
  const raw = env[variable];
  if (raw === undefined) throw new Error(`${value}: environment variable ${variable} is not set on this node`);
  if (key === undefined) return raw;
  let doc: unknown;
  try { doc = JSON.parse(raw); } catch { throw new Error(`${value}: ${variable} does not hold a JSON object`); }
  const v = doc && typeof doc === 'object' && Object.hasOwn(doc, key) ? (doc as Record<string, unknown>)[key] : undefined;
  if (typeof v !== 'string') throw new Error(`${value}: ${variable} has no string field '${key}'`);
  return v;
}

/**
 * `value` with every vault reference in it replaced by its secret; the input is not changed, and
 * parts without references are returned as they are. Throws naming the path of the first reference
 * that cannot be resolved.
 */
export function resolveReferences<T>(value: T, env: NodeJS.ProcessEnv, path = ''): T {
  if (isReference(value)) {
    try { return resolveOne(value, env) as T; } catch (err) { throw new Error(`${path || 'value'}: ${(err as Error).message}`); }
  }
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    value.forEach((v, i) => {
      const r = resolveReferences(v, env, `${path}[${i}]`);
      if (r !== v) (out ??= [...value])[i] = r;
    });
    return (out ?? value) as T;
  }
  if (value && typeof value === 'object') {
    let out: Record<string, unknown> | null = null;
    for (const [k, v] of Object.entries(value)) {
      const r = resolveReferences(v, env, path ? `${path}.${k}` : k);
      if (r !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = r;
    }
    return (out ?? value) as T;
  }
  return value;
}
