// Kong's TLS entities as admin definitions: `certificates` (with the write-only `snis` shorthand that
// creates, replaces and lists its SNI rows, as kong/db/dao/certificates.lua), `snis` and
// `ca_certificates` (whose `cert_digest` is computed on write). Deleting a certificate deletes its
// SNIs (ON DELETE CASCADE, as Kong's DAO). References to them from services, upstreams and plugins
// are checked on write and refused on delete, as Kong's foreign keys and ca_certificates DAO do.
import { randomUUID } from 'node:crypto';
import { and, arrayContains, eq, inArray, lte, ne, sql, type SQL } from 'drizzle-orm';
import {
  AdminError, ErrorCode, caCertificateSchema, certDigest, certificateInputSchema, certificateNotAfter, certificateSchema,
  luaKey, parseCertificate, schemaViolation, sniSchema, violationsFromZod, type Violation,
} from '@portico/shared';
import * as tables from '../db/schema.ts';
import type { Executor } from '../db/index.ts';
import type { EntityDef } from './entity.ts';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
/** `30d`, `12h`, `90m`, `3600` (seconds): the window of `?expiring_in=`. */
export function parseDuration(raw: string): number | null {
  const m = /^(\d{1,9})([smhdw]?)$/.exec(raw.trim());
  return m ? Number(m[1]) * UNITS[m[2] || 's'] : null;
}

/** The names in a `snis` shorthand, checked as Kong's `parse_name_list` does (sorted, no duplicates). */
function sniList(input: Record<string, unknown>): { names: string[] | undefined; violations: Violation[] } {
  if (!('snis' in input) || input.snis === undefined) return { names: undefined, violations: [] };
  if (input.snis === null) return { names: [], violations: [] };
  const r = certificateInputSchema.safeParse({ snis: input.snis });
  if (!r.success) return { names: undefined, violations: violationsFromZod(r.error) };
  const names = r.data.snis ?? [];
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) return { names: undefined, violations: [{ path: ['snis'], message: `${n} is duplicated` }] };
    seen.add(n);
  }
  return { names: [...names].sort(), violations: [] };
}

/** Kong's body for a reference to a row that does not exist (code 4), under `fields` at `path`. */
export function missingReference(path: string[], entity: string, id: string): AdminError {
  const fields = path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), { id });
  return AdminError.of(400, ErrorCode.FOREIGN_KEY_VIOLATION,
    `the foreign key '${luaKey({ id })}' does not reference an existing '${entity}' entity.`, { fields: fields as Record<string, unknown> });
}

const idOf = (ref: unknown) => (ref && typeof ref === 'object' ? (ref as { id?: unknown }).id : undefined);

/**
 * An id an entity holds outside its foreign keys (a uuid array, a plugin's JSON config): checked
 * against the store on an admin write (checkIdReferences) and against the file on an import.
 */
export interface IdReference { path: string[]; entity: 'certificates' | 'ca_certificates'; id: string }

/** A certificate named by `client_certificate` (services, upstreams). */
function clientCertificateReferences(entity: Record<string, unknown>): IdReference[] {
  const id = idOf(entity.client_certificate);
  return typeof id === 'string' ? [{ path: ['client_certificate'], entity: 'certificates', id }] : [];
}

/** Every id in a `ca_certificates` list (a service's, mtls-auth's config) names a CA certificate. */
function caCertificateReferences(ids: unknown, path: string[]): IdReference[] {
  if (!Array.isArray(ids)) return [];
  return ids.filter((i): i is string => typeof i === 'string').map((id) => ({ path, entity: 'ca_certificates', id }));
}

export const serviceTlsReferences = (entity: Record<string, unknown>): IdReference[] =>
  [...clientCertificateReferences(entity), ...caCertificateReferences(entity.ca_certificates, ['ca_certificates'])];
export const upstreamTlsReferences = clientCertificateReferences;
export const pluginTlsReferences = (entity: Record<string, unknown>): IdReference[] =>
  caCertificateReferences((entity.config as Record<string, unknown> | null | undefined)?.ca_certificates, ['config', 'ca_certificates']);

const REFERENCED_TABLES = { certificates: tables.certificates, ca_certificates: tables.caCertificates } as const;

/** Every reference must name a stored row: Kong's code 4 for the first that does not. */
export async function checkIdReferences(ex: Executor, refs: IdReference[]): Promise<void> {
  for (const [entity, table] of Object.entries(REFERENCED_TABLES)) {
    const wanted = refs.filter((r) => r.entity === entity);
    if (!wanted.length) continue;
    const found = new Set((await ex.select({ id: table.id }).from(table).where(inArray(table.id, wanted.map((r) => r.id)))).map((r) => r.id));
    const missing = wanted.find((r) => !found.has(r.id));
    if (missing) throw missingReference(missing.path, entity, missing.id);
  }
}

/** Kong's refusal to delete what another entity still names (code 4, `@referenced_by`). */
function referencedBy(by: string, message: string): AdminError {
  return AdminError.of(400, ErrorCode.FOREIGN_KEY_VIOLATION, message, { fields: { '@referenced_by': by } });
}

/**
 * The references to certificates and CA certificates are ids in columns without a database key
 * (a uuid array, a plugin's JSON config), so a delete checks them itself, as Kong's DAO does.
 */
async function refuseCertificateDelete(ex: Executor, entity: Record<string, unknown>): Promise<void> {
  const id = entity.id as string;
  for (const [by, table] of [['services', tables.services], ['upstreams', tables.upstreams]] as const) {
    const [ref] = await ex.select({ id: table.id }).from(table).where(eq(table.client_certificate_id, id)).limit(1);
    if (ref) throw referencedBy(by, `an existing '${by}' entity references this 'certificates' entity`);
  }
}

async function refuseCaCertificateDelete(ex: Executor, entity: Record<string, unknown>): Promise<void> {
  const id = entity.id as string;
  const [service] = await ex.select({ id: tables.services.id }).from(tables.services)
    .where(arrayContains(tables.services.ca_certificates, [id])).limit(1);
  if (service) throw referencedBy('services', `ca certificate ${id} is still referenced by services (id = ${service.id})`);
  const [plugin] = await ex.select({ id: tables.plugins.id }).from(tables.plugins)
    .where(sql`(${tables.plugins.config} -> 'ca_certificates') @> ${JSON.stringify([id])}::jsonb`).limit(1);
  if (plugin) throw referencedBy('plugins', `ca certificate ${id} is still referenced by plugins (id = ${plugin.id})`);
}

export const certificateDef: EntityDef = {
  name: 'certificates',
  table: tables.certificates,
  schema: certificateSchema,
  foreignKeys: [],
  beforeDelete: refuseCertificateDelete,
  schemaView: { input: certificateInputSchema, encrypted: ['key', 'key_alt'] },
  expandInput(input) {
    const { snis: _s, ...rest } = input;
    const { violations } = sniList(input);
    return violations.length ? { ok: false, violations } : { ok: true, value: rest };
  },
  rowExtras: (e) => ({ not_after: certificateNotAfter(e as { cert: string; cert_alt?: string | null }) }),
  listConditions(param) {
    const raw = param('expiring_in');
    if (raw === undefined) return [];
    const seconds = parseDuration(raw);
    if (seconds === null) {
      throw AdminError.of(400, ErrorCode.INVALID_OPTIONS, 'invalid option (expiring_in: expected a duration such as 30d, 12h or 3600)',
        { options: { expiring_in: 'expected a duration such as 30d, 12h or 3600' } });
    }
    return [lte(tables.certificates.not_after, Math.floor(Date.now() / 1000) + seconds)] as SQL[];
  },
  async afterWrite(tx, entity, input) {
    const { names } = sniList(input);
    if (names === undefined) return;
    const id = entity.id as string;
    if (names.length) {
      const taken = await tx.select().from(tables.snis).where(and(inArray(tables.snis.name, names), ne(tables.snis.certificate_id, id)));
      if (taken.length) {
        throw schemaViolation([{ path: ['snis'], message: `${taken[0].name} already associated with existing certificate '${taken[0].certificate_id}'` }]);
      }
    }
    const current = await tx.select().from(tables.snis).where(eq(tables.snis.certificate_id, id));
    const gone = current.filter((s) => !names.includes(s.name)).map((s) => s.id);
    if (gone.length) await tx.delete(tables.snis).where(inArray(tables.snis.id, gone));
    const have = new Set(current.map((s) => s.name));
    const now = Math.floor(Date.now() / 1000);
    const added = names.filter((n) => !have.has(n)).map((name) => ({ id: randomUUID(), created_at: now, updated_at: now, name, certificate_id: id, tags: null }));
    if (added.length) await tx.insert(tables.snis).values(added);
  },
  async decorate(ex, entities) {
    if (!entities.length) return;
    const rows = await ex.select({ name: tables.snis.name, certificate_id: tables.snis.certificate_id }).from(tables.snis)
      .where(inArray(tables.snis.certificate_id, entities.map((e) => e.id as string)));
    for (const e of entities) e.snis = rows.filter((r) => r.certificate_id === e.id).map((r) => r.name).sort();
  },
};

export const sniDef: EntityDef = {
  name: 'snis',
  table: tables.snis,
  schema: sniSchema,
  endpointKey: 'name',
  foreignKeys: [{ field: 'certificate', entity: 'certificates', required: true }],
};

export const caCertificateDef: EntityDef = {
  name: 'ca_certificates',
  table: tables.caCertificates,
  schema: caCertificateSchema,
  foreignKeys: [],
  beforeDelete: refuseCaCertificateDelete,
  schemaView: { auto: ['cert_digest'] },
  expandInput(input) {
    const parsed = typeof input.cert === 'string' ? parseCertificate(input.cert) : null;
    return { ok: true, value: parsed && 'cert' in parsed ? { ...input, cert_digest: certDigest(parsed.cert) } : input };
  },
  uniqueError: (column, e) => column === 'cert_digest'
    ? { message: `UNIQUE violation detected on '{cert_digest="${e.cert_digest}"}'`, fields: { cert_digest: e.cert_digest } } : undefined,
};

export const certificateDefs: EntityDef[] = [certificateDef, sniDef, caCertificateDef];
