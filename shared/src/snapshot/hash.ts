import { createHash } from 'node:crypto';
import type { Config } from './schema.ts';

/** JSON with object keys sorted at every level, so equal content serializes to equal bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k])).join(',') + '}';
}

/**
 * The config hash: sha256 over the canonical form, with every entity list sorted by id so the
 * order rows come out of the database does not change it.
 */
export function configHash(config: Config): string {
  const sorted: Record<string, unknown> = {};
  for (const [k, list] of Object.entries(config)) {
    sorted[k] = [...(list as { id: string }[])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  return createHash('sha256').update(canonicalJson(sorted)).digest('hex');
}
