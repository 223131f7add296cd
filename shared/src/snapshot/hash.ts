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

/** A config's entities as canonical JSON, list by list in the config's order, and the config hash over them. */
export interface CanonicalConfig {
  hash: string;
  texts: Record<string, string[]>;
}

const byId = (list: { id: string }[]) => (a: number, b: number) => (list[a].id < list[b].id ? -1 : list[a].id > list[b].id ? 1 : 0);

/**
 * The config hash: sha256 over the canonical form, with every entity list sorted by id so the
 * order rows come out of the database does not change it. The canonical text of each entity is
 * kept: a DP's decoder keys entities by it, to reuse what did not change between versions.
 */
export function canonicalConfig(config: Config): CanonicalConfig {
  const digest = createHash('sha256').update('{');
  const texts: Record<string, string[]> = {};
  const cfg = config as unknown as Record<string, { id: string }[] | undefined>;
  Object.keys(cfg).filter((k) => cfg[k] !== undefined).sort().forEach((k, i) => {
    const list = cfg[k]!;
    const own = (texts[k] = list.map(canonicalJson));
    const order = list.map((_, j) => j).sort(byId(list));
    digest.update(`${i ? ',' : ''}${JSON.stringify(k)}:[`);
    order.forEach((j, n) => digest.update(n ? `,${own[j]}` : own[j]));
    digest.update(']');
  });
  return { hash: digest.update('}').digest('hex'), texts };
}

export function configHash(config: Config): string {
  return canonicalConfig(config).hash;
}
