// The one list of field names whose values are secrets: a viewer's responses and the audit log's
// recorded changes both hide them (reference/edge-design.md §6). A value is hidden wherever the
// field sits (a plugin's `config.redis.password` as well as a credential's `secret`).

/** Field names whose values are never shown to a viewer nor stored in the audit log. */
export const SECRET_FIELDS: ReadonlySet<string> = new Set(['secret', 'password', 'key', 'key_alt', 'key_hash', 'token', 'token_hash', 'client_secret', 'private_key']);
export const REDACTED = '[REDACTED]';

/** A deep copy of `value` with every scalar under a secret field name replaced by `[REDACTED]`. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELDS.has(k) && v !== null && typeof v !== 'object' ? REDACTED : redact(v);
    return out;
  }
  return value;
}
