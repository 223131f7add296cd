// An admin entity is a definition, not code: its zod schema (shared/), its table, its endpoint key
// and its foreign keys, plus a few hooks for what only some entities do (write-only shorthands,
// hashed secrets, plugin config). The store, the routes and the snapshot builder work from these.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../db/index.ts';
import { certificateDefs, pluginTlsReferences, serviceTlsReferences, upstreamTlsReferences, type IdReference } from './certificates.ts';
import {
  aclSchema, basicAuthCredentialSchema, consumerSchema, expandServiceUrl, hashApiKey, hashPassword, isPasswordHash,
  jwtSecretSchema, keyAuthCredentialSchema, keyAuthInputSchema, luaKey, normalizeTarget, pluginSchema, routeSchema, serviceSchema,
  targetSchema, upstreamSchema,
  violationsFromZod, type Violation,
} from '@portico/shared';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
import * as tables from '../db/schema.ts';
import { checkPluginServiceRefs, refuseReferencedServiceDelete, refuseReferencedServiceRename } from './service-refs.ts';
import { keyring } from './keyring.ts';

export interface ForeignKey {
  /** Field name in the entity (`service`); stored as `<field>_id`. */
  field: string;
  /** Referenced entity's collection name. */
  entity: string;
  /** Path segment under the parent when it differs from the collection's (`/consumers/{c}/key-auth`). */
  nestedPath?: string;
  /** The reference must be set (a credential's consumer, a target's upstream). */
  required?: boolean;
}

/** How `GET /schemas/{entity}` presents the entity to clients: what they write, not what is stored. */
export interface SchemaView {
  /** Write-only inputs turned into stored fields by `expandInput` (a key-auth `key`, a service `url`). */
  input?: z.ZodObject;
  /** Stored fields generated when absent (a jwt `key`): optional for clients. */
  auto?: string[];
  /** Stored derivations clients never write (`key_hash`). */
  hidden?: string[];
  /** Secrets (Kong marks them `encrypted`). */
  encrypted?: string[];
  /** The values `name` takes (the plugins that exist). */
  oneOfNames?: () => string[];
}

export type Expanded = { ok: true; value: Record<string, unknown>; reveal?: Record<string, unknown> } | { ok: false; violations: Violation[] };

export interface EntityDef {
  /** DAO name: the snapshot key and the table (`keyauth_credentials`). */
  name: string;
  /** Collection path when it differs from the name (`key-auths`). */
  path?: string;
  table: PgTable & Record<string, any>;
  schema: z.ZodObject;
  /** Alternative key for item paths (`/services/{name}`), if any. */
  endpointKey?: string;
  /** How an endpoint key is looked up when it is not stored as written (a key by its hash). */
  lookupKey?: (key: string) => { column: string; value: string };
  foreignKeys: ForeignKey[];
  /**
   * Portico-only fields Kong's types lack (a breaker, a route's `query`): a PUT that leaves one out
   * keeps the stored value, since Kong's tools (decK) update by PUT of the fields they know and would
   * otherwise drop it. An explicit null still clears it.
   */
  extensionFields?: string[];
  /** Fields that are records merged key-by-key on PATCH (plugin `config`). */
  mergeRecords?: string[];
  /** Write-only input (service `url`, a credential's plaintext key) turned into stored fields. */
  expandInput?: (input: Record<string, unknown>) => Expanded;
  /** Checks and defaults that depend on other fields (a plugin's config by its name). */
  finalize?: (entity: Record<string, unknown>) => { entity: Record<string, unknown>; violations: Violation[] };
  /**
   * Columns kept from the write-only input (`reveal`) but never part of the entity, so never in a
   * snapshot: a key-auth key sealed by the keyring.
   */
  sealedColumns?: (reveal: Record<string, unknown>) => Record<string, unknown>;
  /** What admin reads add from such columns (the key, unsealed). */
  present?: (row: Record<string, unknown>, entity: Record<string, unknown>) => Record<string, unknown>;
  /** Extra columns derived from the entity (uniqueness keys). */
  rowExtras?: (entity: Record<string, unknown>) => Record<string, unknown>;
  /** Kong's body for a unique violation on a derived column. */
  uniqueError?: (column: string, entity: Record<string, unknown>) => { message: string; fields: Record<string, unknown> } | undefined;
  /** The schema form values are coerced against (a plugin's depends on its name). */
  formSchema?: (raw: Record<string, unknown>, existing?: Record<string, unknown>) => z.ZodType;
  /** Query parameters a list filters on exactly (`/consumers?custom_id=`). */
  listFilters?: string[];
  /** Query parameters beyond exact matches (`/certificates?expiring_in=30d`), turned into conditions. */
  listConditions?: (param: (name: string) => string | undefined) => SQL[];
  /** Work in the write's transaction after the row is stored (a certificate's `snis` shorthand). */
  afterWrite?: (tx: Tx, entity: Record<string, unknown>, input: Record<string, unknown>) => Promise<void>;
  /** References the foreign keys do not describe (a service's `ca_certificates` ids): checked on every write and import. */
  idReferences?: (entity: Record<string, unknown>) => IdReference[];
  /** Checks beyond ids that need the store (a plugin naming a service by id or name; a renamed service still named). */
  checkReferences?: (ex: Executor, entity: Record<string, unknown>) => Promise<void>;
  /** Refuses a delete that something still references without a database key (a CA certificate). */
  beforeDelete?: (ex: Executor, entity: Record<string, unknown>) => Promise<void>;
  /** Fields computed on read (a certificate's `snis`), added to every entity the API answers with. */
  decorate?: (ex: Executor, entities: Record<string, unknown>[]) => Promise<void>;
  /** Only reachable under its parent (Kong's targets: top-level `/targets` is 404). */
  nestedOnly?: boolean;
  /** The endpoint key is unique only within the parent, so top-level item paths take ids only. */
  endpointKeyNestedOnly?: boolean;
  schemaView?: SchemaView;
}

export const collectionPath = (def: EntityDef) => def.path ?? def.name;

const coercionShapes = new WeakMap<EntityDef, z.ZodType>();
/** What form values are coerced against: the stored fields plus the write-only inputs (`ttl=60`). */
export function coercionSchema(def: EntityDef): z.ZodType {
  if (!def.schemaView?.input) return def.schema;
  let s = coercionShapes.get(def);
  if (!s) coercionShapes.set(def, s = z.object({ ...def.schema.shape, ...def.schemaView.input.shape }));
  return s;
}

const RANDOM_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** 32 random alphanumerics, as Kong generates keys and secrets. */
export function randomToken(length = 32): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (let i = 0; out.length < length; i++) {
    if (bytes[i] < 248) out += RANDOM_ALPHABET[bytes[i] % 62];
  }
  return out;
}

export const serviceDef: EntityDef = {
  name: 'services',
  table: tables.services,
  schema: serviceSchema,
  endpointKey: 'name',
  foreignKeys: [],
  idReferences: serviceTlsReferences,
  checkReferences: refuseReferencedServiceRename,
  beforeDelete: refuseReferencedServiceDelete,
  extensionFields: ['circuit_breaker'],
  schemaView: { input: z.object({ url: z.string().optional().describe('Shorthand for protocol, host, port and path') }) },
  expandInput(input) {
    const r = expandServiceUrl(input);
    return r.ok ? r : { ok: false, violations: [{ path: [r.path], message: r.message }] };
  },
};

export const routeDef: EntityDef = {
  name: 'routes',
  table: tables.routes,
  schema: routeSchema,
  endpointKey: 'name',
  foreignKeys: [{ field: 'service', entity: 'services' }],
  extensionFields: ['query'],
};

export const consumerDef: EntityDef = {
  name: 'consumers',
  table: tables.consumers,
  schema: consumerSchema,
  endpointKey: 'username',
  foreignKeys: [],
  listFilters: ['custom_id'],
};

const scopeKey = (e: Record<string, unknown>, f: string) => (e[f] as { id?: string } | null)?.id ?? '';

/**
 * Kong 3.x's deprecated plugin fields (its schemas' `shorthand_fields`), still written by older
 * tutorials and kong.yml files: each is moved to the field that replaced it, unless that is given.
 */
const PLUGIN_SHORTHANDS: Record<string, Record<string, string[]>> = {
  'rate-limiting': Object.fromEntries(['host', 'port', 'password', 'username', 'database', 'timeout', 'ssl', 'ssl_verify', 'server_name']
    .map((f) => [`redis_${f}`, ['redis', f]])),
};

function expandPluginShorthands(input: Record<string, unknown>): Record<string, unknown> {
  // A name that is not a string (an object a client sent) is the schema's to refuse, not a key here.
  const table = typeof input.name === 'string' && Object.hasOwn(PLUGIN_SHORTHANDS, input.name) ? PLUGIN_SHORTHANDS[input.name] : undefined;
  const config = input.config;
  if (!table || !config || typeof config !== 'object' || Array.isArray(config)) return input;
  const out: Record<string, unknown> = { ...(config as Record<string, unknown>) };
  for (const [old, [parent, field]] of Object.entries(table)) {
    if (!(old in out)) continue;
    const value = out[old];
    delete out[old];
    const nested = out[parent] && typeof out[parent] === 'object' ? { ...(out[parent] as Record<string, unknown>) } : {};
    if (value !== null && nested[field] === undefined) nested[field] = value;
    out[parent] = nested;
  }
  return { ...input, config: out };
}

export const pluginDef: EntityDef = {
  name: 'plugins',
  table: tables.plugins,
  schema: pluginSchema,
  endpointKey: 'instance_name',
  foreignKeys: [{ field: 'service', entity: 'services' }, { field: 'route', entity: 'routes' }, { field: 'consumer', entity: 'consumers' }],
  mergeRecords: ['config'],
  idReferences: pluginTlsReferences,
  checkReferences: checkPluginServiceRefs,
  schemaView: { oneOfNames: () => [...PLUGIN_DEFINITIONS.keys()] },
  expandInput: (input) => ({ ok: true, value: expandPluginShorthands(input) }),
  finalize(entity) {
    const plugin = PLUGIN_DEFINITIONS.get(entity.name as string);
    if (!plugin) {
      return { entity, violations: [{ path: ['name'], message: `plugin '${entity.name}' not enabled; add it to the 'plugins' configuration property` }] };
    }
    const violations: Violation[] = [];
    if (plugin.noConsumerScope && entity.consumer) violations.push({ path: ['consumer'], message: 'value must be null' });
    const parsed = plugin.configSchema.safeParse(entity.config ?? {});
    if (!parsed.success) {
      for (const v of violationsFromZod(parsed.error)) violations.push({ path: ['config', ...v.path], message: v.message });
      return { entity, violations };
    }
    return { entity: { ...entity, config: parsed.data }, violations };
  },
  rowExtras: (e) => ({ cache_key: `plugins:${e.name}:${scopeKey(e, 'route')}:${scopeKey(e, 'service')}:${scopeKey(e, 'consumer')}` }),
  uniqueError(column, e) {
    if (column !== 'cache_key') return undefined;
    const fields = { name: e.name, service: e.service ?? null, route: e.route ?? null, consumer: e.consumer ?? null };
    return { message: `UNIQUE violation detected on '${luaKey(fields)}'`, fields };
  },
  formSchema(raw, existing) {
    const name = (raw.name ?? existing?.name) as string | undefined;
    const plugin = name ? PLUGIN_DEFINITIONS.get(name) : undefined;
    return plugin ? pluginSchema.extend({ config: plugin.configSchema }) : pluginSchema;
  },
};

/** Validate a credential's write-only fields against a small input schema; drop them afterwards. */
function readInput<T extends z.ZodObject>(schema: T, input: Record<string, unknown>): { ok: true; value: z.infer<T> } | { ok: false; violations: Violation[] } {
  const r = schema.safeParse(input);
  return r.success ? { ok: true, value: r.data } : { ok: false, violations: violationsFromZod(r.error) };
}

export const keyAuthDef: EntityDef = {
  name: 'keyauth_credentials',
  path: 'key-auths',
  table: tables.keyauthCredentials,
  schema: keyAuthCredentialSchema,
  endpointKey: 'key',
  lookupKey: (key) => ({ column: 'key_hash', value: hashApiKey(key) }),
  foreignKeys: [{ field: 'consumer', entity: 'consumers', nestedPath: 'key-auth', required: true }],
  schemaView: { input: keyAuthInputSchema, auto: ['key'], hidden: ['key_hash', 'key_prefix'], encrypted: ['key'] },
  expandInput(input) {
    const r = readInput(keyAuthInputSchema, { key: input.key, ttl: input.ttl });
    if (!r.ok) return r;
    const { key: _k, ttl: _t, ...rest } = input;
    const out: Record<string, unknown> = { ...rest };
    let reveal: Record<string, unknown> | undefined;
    if (r.value.key !== undefined || out.key_hash === undefined) {
      const key = r.value.key ?? randomToken();
      out.key_hash = hashApiKey(key);
      out.key_prefix = key.slice(0, 4);
      reveal = { key };
    }
    if ('ttl' in input) out.expires_at = r.value.ttl ? Math.floor(Date.now() / 1000) + r.value.ttl : null;
    return { ok: true, value: out, reveal };
  },
  sealedColumns: (reveal) => {
    const ring = keyring();
    return ring && typeof reveal.key === 'string' ? { key_sealed: ring.encrypt(reveal.key) } : {};
  },
  // Kong's `key` field: given back only where the keyring holds it (viewers get it redacted).
  present: (row, entity) => {
    const sealed = row.key_sealed as string | null;
    const key = sealed ? keyring()?.decrypt(sealed) : undefined;
    return key === undefined ? entity : { ...entity, key };
  },
  uniqueError: (column) => column === 'key_hash'
    ? { message: "UNIQUE violation detected on '{key=\"<redacted>\"}'", fields: { key: 'already in use' } } : undefined,
};

export const jwtDef: EntityDef = {
  name: 'jwt_secrets',
  path: 'jwts',
  table: tables.jwtSecrets,
  schema: jwtSecretSchema,
  endpointKey: 'key',
  foreignKeys: [{ field: 'consumer', entity: 'consumers', nestedPath: 'jwt', required: true }],
  schemaView: { auto: ['key', 'secret'], encrypted: ['secret'] },
  expandInput(input) {
    const out = { ...input };
    out.key ??= randomToken();
    const alg = (out.algorithm as string | undefined) ?? 'HS256';
    if (typeof alg === 'string' && alg.startsWith('HS')) out.secret ??= randomToken();
    return { ok: true, value: out };
  },
};

export const basicAuthDef: EntityDef = {
  name: 'basicauth_credentials',
  path: 'basic-auths',
  table: tables.basicauthCredentials,
  schema: basicAuthCredentialSchema,
  endpointKey: 'username',
  foreignKeys: [{ field: 'consumer', entity: 'consumers', nestedPath: 'basic-auth', required: true }],
  schemaView: { encrypted: ['password'] },
  expandInput(input) {
    const out = { ...input };
    // A value already in our hash format is kept (a re-save, or an import of hashed passwords).
    if (typeof out.password === 'string' && out.password !== '' && !isPasswordHash(out.password)) out.password = hashPassword(out.password);
    return { ok: true, value: out };
  },
};

export const aclDef: EntityDef = {
  name: 'acls',
  table: tables.acls,
  schema: aclSchema,
  // Kong: `/consumers/{c}/acls/{group}` (lookups by group are confined to the consumer).
  endpointKey: 'group',
  endpointKeyNestedOnly: true,
  foreignKeys: [{ field: 'consumer', entity: 'consumers', nestedPath: 'acls', required: true }],
  rowExtras: (e) => ({ cache_key: `acls:${scopeKey(e, 'consumer')}:${e.group}` }),
  uniqueError: (column, e) => column === 'cache_key'
    ? { message: `UNIQUE violation detected on '${luaKey({ consumer: e.consumer, group: e.group })}'`, fields: { consumer: e.consumer, group: e.group } } : undefined,
};

export const upstreamDef: EntityDef = {
  name: 'upstreams',
  table: tables.upstreams,
  schema: upstreamSchema,
  endpointKey: 'name',
  foreignKeys: [],
  idReferences: upstreamTlsReferences,
  extensionFields: ['circuit_breaker', 'status_retries', 'fallback_response'],
  expandInput(input) {
    // Kong's shorthand: choosing a hash forces consistent hashing unless an algorithm is given.
    if (typeof input.hash_on === 'string' && input.hash_on !== 'none' && input.algorithm === undefined) {
      return { ok: true, value: { ...input, algorithm: 'consistent-hashing' } };
    }
    return { ok: true, value: input };
  },
};

export const targetDef: EntityDef = {
  name: 'targets',
  table: tables.targets,
  schema: targetSchema,
  endpointKey: 'target',
  lookupKey: (key) => ({ column: 'target', value: normalizeTarget(key) ?? key }),
  foreignKeys: [{ field: 'upstream', entity: 'upstreams', required: true }],
  nestedOnly: true,
  expandInput(input) {
    const t = typeof input.target === 'string' ? normalizeTarget(input.target) : null;
    return { ok: true, value: t ? { ...input, target: t } : input };
  },
  rowExtras: (e) => ({ cache_key: `targets:${scopeKey(e, 'upstream')}:${e.target}` }),
  uniqueError: (column, e) => column === 'cache_key'
    ? { message: `UNIQUE violation detected on '${luaKey({ target: e.target, upstream: e.upstream })}'`, fields: { target: e.target, upstream: e.upstream } } : undefined,
};

export const ENTITIES: EntityDef[] = [serviceDef, routeDef, consumerDef, pluginDef, keyAuthDef, jwtDef, basicAuthDef, aclDef, upstreamDef, targetDef, ...certificateDefs];
export const ENTITY_BY_NAME = new Map(ENTITIES.map((d) => [d.name, d]));

