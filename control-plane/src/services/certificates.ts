// Kong's TLS entities as admin definitions: `certificates` (with the write-only `snis` shorthand that
// creates, replaces and lists its SNI rows, as kong/db/dao/certificates.lua), `snis` and
// `ca_certificates` (whose `cert_digest` is computed on write). Deleting a certificate deletes its
// SNIs (ON DELETE CASCADE, as Kong's DAO).
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, lte, ne, type SQL } from 'drizzle-orm';
import {
  AdminError, ErrorCode, caCertificateSchema, certDigest, certificateInputSchema, certificateNotAfter, certificateSchema,
  parseCertificate, schemaViolation, sniSchema, violationsFromZod, type Violation,
} from '@portico/shared';
import * as tables from '../db/schema.ts';
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

export const certificateDef: EntityDef = {
  name: 'certificates',
  table: tables.certificates,
  schema: certificateSchema,
  foreignKeys: [],
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
  schemaView: { auto: ['cert_digest'] },
  expandInput(input) {
    const parsed = typeof input.cert === 'string' ? parseCertificate(input.cert) : null;
    return { ok: true, value: parsed && 'cert' in parsed ? { ...input, cert_digest: certDigest(parsed.cert) } : input };
  },
  uniqueError: (column, e) => column === 'cert_digest'
    ? { message: `UNIQUE violation detected on '{cert_digest="${e.cert_digest}"}'`, fields: { cert_digest: e.cert_digest } } : undefined,
};

export const certificateDefs: EntityDef[] = [certificateDef, sniDef, caCertificateDef];
