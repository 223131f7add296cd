// Services named inside plugin configs (PluginDefinition.serviceRefs: the aggregator's legs) are
// references without a database key, so they are checked here, as Kong's DAO checks foreign keys:
// a plugin naming a service that does not exist is a 400 with the field's path, and a service
// still named by a plugin cannot be deleted or renamed away from under it. The DP checks the same
// again when it applies a snapshot (data-plane/src/compile).
import { eq, inArray, or } from 'drizzle-orm';
import { AdminError, ErrorCode, UUID_RE } from '@portico/shared';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
import * as tables from '../db/schema.ts';
import type { Executor } from '../db/index.ts';
import { missingReference } from './certificates.ts';

const REFERRING = [...PLUGIN_DEFINITIONS.values()].filter((d) => d.serviceRefs).map((d) => d.name);

const refsOf = (name: unknown, config: unknown) => PLUGIN_DEFINITIONS.get(name as string)?.serviceRefs?.(config) ?? [];

/** Every service a plugin's config names must exist, by id or by name. */
export async function checkPluginServiceRefs(ex: Executor, entity: Record<string, unknown>): Promise<void> {
  const refs = refsOf(entity.name, entity.config);
  if (!refs.length) return;
  const wanted = [...new Set(refs.map((r) => r.ref))];
  const ids = wanted.filter((r) => UUID_RE.test(r));
  const rows = await ex.select({ id: tables.services.id, name: tables.services.name }).from(tables.services)
    .where(ids.length ? or(inArray(tables.services.name, wanted), inArray(tables.services.id, ids)) : inArray(tables.services.name, wanted));
  const found = new Set(rows.flatMap((r) => [r.id, r.name]));
  const missing = refs.find((r) => !found.has(r.ref));
  if (!missing) return;
  if (UUID_RE.test(missing.ref)) throw missingReference(['config', ...missing.path.map(String)], 'services', missing.ref);
  throw AdminError.of(400, ErrorCode.FOREIGN_KEY_VIOLATION, `no service named '${missing.ref}' (config.${missing.path.join('.')})`,
    { fields: { config: nest(missing.path, `no service named '${missing.ref}'`) } });
}

function nest(path: Array<string | number>, message: string): Record<string, unknown> {
  return path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), message) as Record<string, unknown>;
}

/** The first plugin naming the service by one of `keys`, if any. */
async function referrer(ex: Executor, keys: string[]): Promise<{ id: string; path: string } | null> {
  if (!REFERRING.length) return null;
  const rows = await ex.select({ id: tables.plugins.id, name: tables.plugins.name, config: tables.plugins.config }).from(tables.plugins)
    .where(inArray(tables.plugins.name, REFERRING));
  for (const p of rows) {
    const hit = refsOf(p.name, p.config).find((r) => keys.includes(r.ref));
    if (hit) return { id: p.id, path: `config.${hit.path.join('.')}` };
  }
  return null;
}

/** A service a plugin names cannot be deleted (Kong's `@referenced_by` answer). */
export async function refuseReferencedServiceDelete(ex: Executor, entity: Record<string, unknown>): Promise<void> {
  const by = await referrer(ex, [entity.id as string, ...(entity.name ? [entity.name as string] : [])]);
  if (by) throw AdminError.of(400, ErrorCode.FOREIGN_KEY_VIOLATION, `service is still referenced by plugins (id = ${by.id}, ${by.path})`, { fields: { '@referenced_by': 'plugins' } });
}

/** A service a plugin names by its name keeps that name. */
export async function refuseReferencedServiceRename(ex: Executor, entity: Record<string, unknown>): Promise<void> {
  const [stored] = await ex.select({ name: tables.services.name }).from(tables.services).where(eq(tables.services.id, entity.id as string));
  if (!stored?.name || stored.name === entity.name) return;
  const by = await referrer(ex, [stored.name]);
  if (by) throw AdminError.of(400, ErrorCode.FOREIGN_KEY_VIOLATION, `service '${stored.name}' is referenced by name by plugins (id = ${by.id}, ${by.path}): it cannot be renamed`, { fields: { name: `referenced by plugin ${by.id}` } });
}
