// Postgres tables. Column names are Kong's field names so rows map onto entities generically;
// a foreign key `service` is stored as `service_id`.
import { bigint, boolean, check, customType, index, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';

const bytea = customType<{ data: Buffer }>({ dataType: () => 'bytea' });

export const services = pgTable('services', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  name: text('name').unique('services_name_unique'),
  protocol: text('protocol').notNull(),
  host: text('host').notNull(),
  port: integer('port').notNull(),
  path: text('path'),
  retries: integer('retries').notNull(),
  connect_timeout: integer('connect_timeout').notNull(),
  write_timeout: integer('write_timeout').notNull(),
  read_timeout: integer('read_timeout').notNull(),
  enabled: boolean('enabled').notNull(),
  tls_verify: boolean('tls_verify'),
  tls_verify_depth: integer('tls_verify_depth'),
  ca_certificates: uuid('ca_certificates').array(),
  client_certificate_id: uuid('client_certificate_id'),
  tags: text('tags').array(),
  circuit_breaker: jsonb('circuit_breaker'),
});

export const routes = pgTable('routes', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  name: text('name').unique('routes_name_unique'),
  protocols: text('protocols').array().notNull(),
  methods: text('methods').array(),
  hosts: text('hosts').array(),
  paths: text('paths').array(),
  headers: jsonb('headers'),
  snis: text('snis').array(),
  query: jsonb('query'),
  sources: jsonb('sources'),
  destinations: jsonb('destinations'),
  https_redirect_status_code: integer('https_redirect_status_code').notNull(),
  regex_priority: integer('regex_priority').notNull(),
  strip_path: boolean('strip_path').notNull(),
  path_handling: text('path_handling').notNull(),
  preserve_host: boolean('preserve_host').notNull(),
  request_buffering: boolean('request_buffering').notNull(),
  response_buffering: boolean('response_buffering').notNull(),
  service_id: uuid('service_id').references(() => services.id, { onDelete: 'restrict' }),
  tags: text('tags').array(),
});

/** One row: the config version. Every write transaction bumps it, which also serializes writers. */
export const configState = pgTable('config_state', {
  id: integer('id').primaryKey(),
  version: bigint('version', { mode: 'number' }).notNull(),
});

/** The last snapshots built, newest first by version (history for audit and rollback). */
export const configVersions = pgTable('config_versions', {
  version: bigint('version', { mode: 'number' }).primaryKey(),
  hash: text('hash').notNull(),
  built_at: bigint('built_at', { mode: 'number' }).notNull(),
  size_bytes: integer('size_bytes').notNull(),
  /** The snapshot's bytes: versions stored before config_blocks (migration 0012); null since. */
  snapshot: bytea('snapshot'),
  /** The snapshot as the sha256 (hex) of each of its gzip members in order, each kept once in config_blocks. */
  parts: text('parts').array(),
  /** Admins whose writes this version holds (empty: written without authentication, or at start). */
  changed_by: text('changed_by').array(),
  /** One line: what the writes since the previous version did. */
  summary: text('summary'),
}, (t) => [check('config_versions_stored', sql`${t.snapshot} IS NOT NULL OR ${t.parts} IS NOT NULL`)]);

/**
 * The gzip members of the snapshots in config_versions, each once, by the sha256 (hex) of its
 * bytes: a one-route write at 10,000 routes stores the ~3 KB block it changed, not 340 KB.
 */
export const configBlocks = pgTable('config_blocks', {
  digest: text('digest').primaryKey(),
  bytes: bytea('bytes').notNull(),
});

/** Data-plane nodes as last reported over the bus. */
export const dataPlanes = pgTable('clustering_data_planes', {
  id: uuid('id').primaryKey(),
  hostname: text('hostname').notNull(),
  ip: text('ip').notNull(),
  version: text('version').notNull(),
  config_version: bigint('config_version', { mode: 'number' }).notNull(),
  config_hash: text('config_hash').notNull(),
  last_error: text('last_error'),
  status: text('status').notNull(),
  started_at: bigint('started_at', { mode: 'number' }).notNull(),
  last_seen: integer('last_seen').notNull(),
  updated_at: integer('updated_at').notNull(),
});

export const consumers = pgTable('consumers', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  username: text('username').unique('consumers_username_unique'),
  custom_id: text('custom_id').unique('consumers_custom_id_unique'),
  tags: text('tags').array(),
});

export const plugins = pgTable('plugins', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  name: text('name').notNull(),
  instance_name: text('instance_name').unique('plugins_instance_name_unique'),
  config: jsonb('config').notNull(),
  service_id: uuid('service_id').references(() => services.id, { onDelete: 'cascade' }),
  route_id: uuid('route_id').references(() => routes.id, { onDelete: 'cascade' }),
  consumer_id: uuid('consumer_id').references(() => consumers.id, { onDelete: 'cascade' }),
  protocols: text('protocols').array().notNull(),
  enabled: boolean('enabled').notNull(),
  tags: text('tags').array(),
  /** name + scope: one instance of a plugin per (service, route, consumer), as Kong's cache_key. */
  cache_key: text('cache_key').notNull().unique('plugins_cache_key_unique'),
});

export const keyauthCredentials = pgTable('keyauth_credentials', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  consumer_id: uuid('consumer_id').notNull().references(() => consumers.id, { onDelete: 'cascade' }),
  key_hash: text('key_hash').notNull().unique('keyauth_credentials_key_hash_unique'),
  key_prefix: text('key_prefix').notNull(),
  /** The key, AES-GCM sealed by the keyring (services/keyring.ts); null without one. Never in snapshots. */
  key_sealed: text('key_sealed'),
  expires_at: integer('expires_at'),
  tags: text('tags').array(),
});

export const jwtSecrets = pgTable('jwt_secrets', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  consumer_id: uuid('consumer_id').notNull().references(() => consumers.id, { onDelete: 'cascade' }),
  key: text('key').notNull().unique('jwt_secrets_key_unique'),
  secret: text('secret'),
  rsa_public_key: text('rsa_public_key'),
  algorithm: text('algorithm').notNull(),
  tags: text('tags').array(),
});

export const basicauthCredentials = pgTable('basicauth_credentials', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  consumer_id: uuid('consumer_id').notNull().references(() => consumers.id, { onDelete: 'cascade' }),
  username: text('username').notNull().unique('basicauth_credentials_username_unique'),
  password: text('password').notNull(),
  tags: text('tags').array(),
});

export const acls = pgTable('acls', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  consumer_id: uuid('consumer_id').notNull().references(() => consumers.id, { onDelete: 'cascade' }),
  group: text('group').notNull(),
  tags: text('tags').array(),
  cache_key: text('cache_key').notNull().unique('acls_cache_key_unique'),
});

export const upstreams = pgTable('upstreams', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  name: text('name').notNull().unique('upstreams_name_unique'),
  algorithm: text('algorithm').notNull(),
  hash_on: text('hash_on').notNull(),
  hash_fallback: text('hash_fallback').notNull(),
  hash_on_header: text('hash_on_header'),
  hash_fallback_header: text('hash_fallback_header'),
  hash_on_cookie: text('hash_on_cookie'),
  hash_on_cookie_path: text('hash_on_cookie_path').notNull(),
  hash_on_query_arg: text('hash_on_query_arg'),
  hash_fallback_query_arg: text('hash_fallback_query_arg'),
  hash_on_uri_capture: text('hash_on_uri_capture'),
  hash_fallback_uri_capture: text('hash_fallback_uri_capture'),
  slots: integer('slots').notNull(),
  host_header: text('host_header'),
  client_certificate_id: uuid('client_certificate_id'),
  use_srv_name: boolean('use_srv_name').notNull(),
  healthchecks: jsonb('healthchecks').notNull(),
  circuit_breaker: jsonb('circuit_breaker'),
  status_retries: jsonb('status_retries'),
  fallback_response: jsonb('fallback_response'),
  tags: text('tags').array(),
});

export const targets = pgTable('targets', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  upstream_id: uuid('upstream_id').notNull().references(() => upstreams.id, { onDelete: 'cascade' }),
  target: text('target').notNull(),
  weight: integer('weight').notNull(),
  tags: text('tags').array(),
  /** upstream + target: one row per target in an upstream. */
  cache_key: text('cache_key').notNull().unique('targets_cache_key_unique'),
});

/** Admin API identities (Portico: free RBAC). Tokens are stored as SHA-256 only. */
export const admins = pgTable('admins', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  username: text('username').notNull().unique('admins_username_unique'),
  role: text('role').notNull(),
  token_hash: text('token_hash').notNull().unique('admins_token_hash_unique'),
  token_prefix: text('token_prefix').notNull(),
  /** Seconds since the epoch; null: never expires. */
  expires_at: bigint('expires_at', { mode: 'number' }),
  /** An editor with tags writes only entities carrying one of them; null: unrestricted. */
  tags: text('tags').array(),
});

/**
 * The audit log: one row per admin write, inserted in the write's own transaction. Append-only and
 * hash-chained (services/audit-chain.ts): `seq` has no gaps (writers are serialized by the
 * config_state row lock and take `last + 1`), `prev_hash` is the previous row's `hash`.
 */
export const auditLog = pgTable('audit_log', {
  seq: bigint('seq', { mode: 'number' }).primaryKey(),
  /** Seconds since the epoch. */
  created_at: bigint('created_at', { mode: 'number' }).notNull(),
  request_id: text('request_id').notNull(),
  /** Null when the admin API runs without authentication (loopback mode). */
  admin_id: uuid('admin_id'),
  admin_username: text('admin_username'),
  token_prefix: text('token_prefix'),
  method: text('method').notNull(),
  path: text('path').notNull(),
  entity_type: text('entity_type').notNull(),
  entity_id: text('entity_id').notNull(),
  /** The entity after the write (before it, for a delete), secrets redacted. */
  change: jsonb('change'),
  config_version: bigint('config_version', { mode: 'number' }).notNull(),
  client_ip: text('client_ip').notNull(),
  prev_hash: text('prev_hash').notNull(),
  hash: text('hash').notNull(),
}, (t) => [
  index('audit_log_created_at_idx').on(t.created_at),
  index('audit_log_entity_idx').on(t.entity_type, t.entity_id),
  index('audit_log_admin_id_idx').on(t.admin_id),
  index('audit_log_config_version_idx').on(t.config_version),
]);

/** TLS certificates (Kong's `certificates`); `key`/`key_alt` are private keys, redacted for viewers. */
export const certificates = pgTable('certificates', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  cert: text('cert').notNull(),
  key: text('key').notNull(),
  cert_alt: text('cert_alt'),
  key_alt: text('key_alt'),
  tags: text('tags').array(),
  /** The earliest "Not After" of the pairs, seconds since the epoch: `GET /certificates?expiring_in=`. */
  not_after: bigint('not_after', { mode: 'number' }),
}, (t) => [index('certificates_not_after_idx').on(t.not_after)]);

/** SNI names, each served with one certificate; deleting the certificate deletes its names (as Kong). */
export const snis = pgTable('snis', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  name: text('name').notNull().unique('snis_name_unique'),
  certificate_id: uuid('certificate_id').notNull().references(() => certificates.id, { onDelete: 'cascade' }),
  tags: text('tags').array(),
}, (t) => [index('snis_certificate_id_idx').on(t.certificate_id)]);

/** CA certificates (Kong's `ca_certificates`): upstream verification and mtls-auth. */
export const caCertificates = pgTable('ca_certificates', {
  id: uuid('id').primaryKey(),
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
  cert: text('cert').notNull(),
  cert_digest: text('cert_digest').notNull().unique('ca_certificates_cert_digest_unique'),
  tags: text('tags').array(),
});
