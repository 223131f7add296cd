// Who may use the admin API (ARCHITECTURE.md invariant 9; reference/edge-design.md §6). Kong OSS
// has no admin authentication and sells RBAC; Portico has it free:
// - admins with tokens: a recognisable prefix (secret scanners find leaks), shown once, stored as
//   SHA-256, optionally expiring, revoked at once by deleting or rotating;
// - roles: admin (everything), editor (config entities), viewer (reads, secrets redacted),
//   auditor (the audit trail);
// - `Kong-Admin-Token` (Kong's and decK's header) or `Authorization: Bearer`;
// - failed attempts limited per client address;
// - with no admin configured the API stays open, but only to loopback clients that are not a web
//   page (a foreign Origin, or a Host that is not loopback — DNS rebinding — is refused);
// - CORS only for the origins in PORTICO_ADMIN_GUI_ORIGINS, never a wildcard.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { count, eq } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import { LRUCache } from 'lru-cache';
import { AdminError, EnvError, ErrorCode, luaKey, schemaViolation, type Env, type Logger } from '@portico/shared';
import type { Db } from '../db/index.ts';
import { admins } from '../db/schema.ts';

export const ROLES = ['admin', 'editor', 'viewer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];
export interface AdminIdentity { id: string; username: string; role: Role }

/** Portico admin tokens start with this, so leak scanners can match them. */
export const TOKEN_PREFIX = 'ptc_adm_';
const BOOTSTRAP_USERNAME = 'admin';
/** Failed authentications allowed per client address and window before 429. */
const MAX_FAILURES = 20;
const FAILURE_WINDOW_MS = 60_000;
/** Field names whose values a viewer never sees. */
const SECRET_FIELDS = new Set(['secret', 'password', 'key', 'key_hash', 'token', 'client_secret', 'private_key']);
const REDACTED = '[REDACTED]';

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
const nowSeconds = () => Math.floor(Date.now() / 1000);

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
function hostOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return (colon > -1 ? hostHeader.slice(0, colon) : hostHeader).toLowerCase();
}

/** PORTICO_ADMIN_TOKEN or the file PORTICO_ADMIN_TOKEN_FILE names. */
export function bootstrapToken(env: Env): string | undefined {
  let token = env.PORTICO_ADMIN_TOKEN;
  if (env.PORTICO_ADMIN_TOKEN_FILE) {
    if (token) throw new EnvError('PORTICO_ADMIN_TOKEN and PORTICO_ADMIN_TOKEN_FILE are both set; set one');
    try { token = readFileSync(env.PORTICO_ADMIN_TOKEN_FILE, 'utf8').trim(); } catch (err) {
      throw new EnvError(`PORTICO_ADMIN_TOKEN_FILE: cannot read '${env.PORTICO_ADMIN_TOKEN_FILE}' (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  if (token === undefined) return undefined;
  if (token.length < 16 || /[^\x21-\x7e]/.test(token)) {
    throw new EnvError(`${env.PORTICO_ADMIN_TOKEN_FILE ? 'PORTICO_ADMIN_TOKEN_FILE' : 'PORTICO_ADMIN_TOKEN'}: a token is at least 16 printable ASCII characters without spaces`);
  }
  return token;
}

/** What each role may do: reads, writes, the admins themselves, the audit trail. */
function allowed(role: Role, method: string, path: string): boolean {
  if (role === 'admin') return true;
  if (path === '/admins' || path.startsWith('/admins/')) return false;
  const audit = path === '/audit' || path.startsWith('/audit/');
  if (role === 'auditor') return audit || path === '/userinfo';
  if (audit) return false;
  const read = method === 'GET' || method === 'HEAD' || (method === 'POST' && /^\/schemas\/.*validate$/.test(path));
  return read || role === 'editor';
}

const ACTIONS: Record<string, string> = { GET: 'read', HEAD: 'read', POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' };

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELDS.has(k) && v !== null && typeof v !== 'object' ? REDACTED : redact(v);
    return out;
  }
  return value;
}

export class AdminAuth {
  /** Authentication is on once an admin exists (bootstrapped from the environment or created). */
  enabled = false;
  private failures = new LRUCache<string, { count: number; until: number }>({ max: 10_000, ttl: FAILURE_WINDOW_MS });
  private readonly origins: Set<string>;

  constructor(private db: Db, private log: Logger, origins: string[]) {
    this.origins = new Set(origins);
  }

  /** Bootstraps the first admin from the environment and decides whether authentication is on. */
  async init(token: string | undefined): Promise<void> {
    if (token) {
      const hash = hashToken(token);
      await this.db.insert(admins).values({
        id: randomUUID(), created_at: nowSeconds(), username: BOOTSTRAP_USERNAME, role: 'admin',
        token_hash: hash, token_prefix: token.slice(0, 12), expires_at: null,
      }).onConflictDoUpdate({ target: admins.username, set: { token_hash: hash, token_prefix: token.slice(0, 12), role: 'admin', expires_at: null } });
    }
    const [{ n }] = await this.db.select({ n: count() }).from(admins);
    this.enabled = n > 0;
  }

  /** CORS from the allowlist only: the origin echoed, `Vary: Origin`, credentials and the token header allowed. */
  cors(): MiddlewareHandler {
    return async (c, next) => {
      const origin = c.req.header('origin');
      const ok = origin !== undefined && this.origins.has(origin);
      if (ok && c.req.method === 'OPTIONS' && c.req.header('access-control-request-method')) {
        return c.body(null, 204, {
          'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin',
          'Access-Control-Allow-Methods': c.req.header('access-control-request-method')!,
          'Access-Control-Allow-Headers': c.req.header('access-control-request-headers') ?? 'Content-Type, Kong-Admin-Token, Authorization',
          'Access-Control-Max-Age': '600',
        });
      }
      await next();
      c.header('Vary', 'Origin', { append: true });
      if (ok) {
        c.header('Access-Control-Allow-Origin', origin);
        c.header('Access-Control-Allow-Credentials', 'true');
        c.header('Access-Control-Expose-Headers', 'X-Portico-Config-Version');
      }
    };
  }

  /** Authenticates and authorizes every request except `GET /status` (probes) and CORS preflights. */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const path = c.req.path;
      if (path === '/status' && (c.req.method === 'GET' || c.req.method === 'HEAD')) return next();
      if (!this.enabled) {
        this.refuseBrowsers(c);
        return next();
      }
      const who = await this.authenticate(c);
      c.set('admin' as never, who as never);
      if (!allowed(who.role, c.req.method, path)) {
        throw AdminError.message(403, `${who.username}, you do not have permissions to ${ACTIONS[c.req.method] ?? 'use'} this resource`);
      }
      await next();
      if (who.role === 'viewer' && c.res.headers.get('content-type')?.startsWith('application/json')) {
        const body = redact(await c.res.json());
        const headers = new Headers(c.res.headers);
        headers.delete('content-length');
        c.res = new Response(JSON.stringify(body), { status: c.res.status, headers });
      }
    };
  }

  /** Without admins the API is for local tools only: a web page must not drive it (CSRF, DNS rebinding). */
  private refuseBrowsers(c: Context): void {
    const origin = c.req.header('origin');
    if (origin !== undefined && !this.origins.has(origin)) {
      throw AdminError.message(403, `requests from web origin '${origin}' are refused: add it to PORTICO_ADMIN_GUI_ORIGINS`);
    }
    const host = hostOf(c.req.header('host') ?? '');
    if (!isLoopbackHost(host)) throw AdminError.message(403, `the admin API has no admins configured and answers only on loopback, not for Host '${host}'`);
  }

  private async authenticate(c: Context): Promise<AdminIdentity> {
    const source = c.env?.incoming?.socket?.remoteAddress ?? 'unknown';
    const failed = this.failures.get(source);
    if (failed && failed.count >= MAX_FAILURES) {
      c.header('Retry-After', String(Math.max(1, Math.ceil((failed.until - Date.now()) / 1000))));
      throw AdminError.message(429, 'Too many failed authentication attempts; try again later');
    }
    const bearer = c.req.header('authorization');
    const token = c.req.header('kong-admin-token') ?? (bearer?.toLowerCase().startsWith('bearer ') ? bearer.slice(7).trim() : undefined);
    if (!token) throw AdminError.message(401, 'Invalid credentials. Token or User credentials required');
    const hash = hashToken(token);
    const [row] = await this.db.select().from(admins).where(eq(admins.token_hash, hash)).limit(1);
    const good = row !== undefined && timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(hash))
      && (row.expires_at === null || row.expires_at > nowSeconds());
    if (!good) {
      const entry = failed ?? { count: 0, until: Date.now() + FAILURE_WINDOW_MS };
      entry.count++;
      this.failures.set(source, entry);
      this.log.warn({ source, reason: row ? 'expired' : 'unknown token' }, 'admin authentication failed');
      throw AdminError.message(401, row ? 'Token expired' : 'Invalid credentials. Token or User credentials required');
    }
    return { id: row.id, username: row.username, role: row.role as Role };
  }

  // --- the /admins verbs ---

  private static view(row: typeof admins.$inferSelect) {
    return { id: row.id, created_at: row.created_at, username: row.username, role: row.role, token_prefix: row.token_prefix, expires_at: row.expires_at };
  }

  private static newToken(): string {
    return TOKEN_PREFIX + randomBytes(30).toString('base64url');
  }

  private static expiry(ttl: unknown): number | null {
    if (ttl === undefined || ttl === null) return null;
    if (typeof ttl === 'string' && /^\d{1,10}$/.test(ttl)) ttl = Number(ttl);
    if (!Number.isInteger(ttl) || (ttl as number) <= 0) throw schemaViolation([{ path: ['ttl'], message: 'expected a positive whole number of seconds' }]);
    return nowSeconds() + (ttl as number);
  }

  async list() {
    return (await this.db.select().from(admins).orderBy(admins.username)).map(AdminAuth.view);
  }

  async find(key: string) {
    const [row] = await this.db.select().from(admins).where(/^[0-9a-f-]{36}$/i.test(key) ? eq(admins.id, key) : eq(admins.username, key)).limit(1);
    if (!row) throw AdminError.message(404, 'Not found');
    return row;
  }

  /** Creates an admin; the token is in this answer only. */
  async create(input: Record<string, unknown>) {
    const errors: { path: string[]; message: string }[] = [];
    const username = input.username;
    if (typeof username !== 'string' || !/^[A-Za-z0-9._@-]{1,128}$/.test(username)) errors.push({ path: ['username'], message: 'required: 1-128 letters, digits, or . _ @ -' });
    if (!ROLES.includes(input.role as Role)) errors.push({ path: ['role'], message: `expected one of: ${ROLES.join(', ')}` });
    for (const k of Object.keys(input)) if (!['username', 'role', 'ttl'].includes(k)) errors.push({ path: [k], message: 'unknown field' });
    if (errors.length) throw schemaViolation(errors);
    const token = AdminAuth.newToken();
    const row = {
      id: randomUUID(), created_at: nowSeconds(), username: username as string, role: input.role as string,
      token_hash: hashToken(token), token_prefix: token.slice(0, 12), expires_at: AdminAuth.expiry(input.ttl),
    };
    const [existing] = await this.db.select({ id: admins.id }).from(admins).where(eq(admins.username, row.username)).limit(1);
    if (existing) {
      throw AdminError.of(409, ErrorCode.UNIQUE_VIOLATION, `UNIQUE violation detected on '${luaKey({ username: row.username })}'`, { fields: { username: row.username } });
    }
    await this.db.insert(admins).values(row);
    this.enabled = true;
    return { ...AdminAuth.view(row), token };
  }

  /** A new token for an admin; the old one stops working at once. */
  async rotate(key: string, input: Record<string, unknown>) {
    const row = await this.find(key);
    const token = AdminAuth.newToken();
    const next = { token_hash: hashToken(token), token_prefix: token.slice(0, 12), expires_at: AdminAuth.expiry(input.ttl) };
    await this.db.update(admins).set(next).where(eq(admins.id, row.id));
    return { ...AdminAuth.view({ ...row, ...next }), token };
  }

  async remove(key: string, self: AdminIdentity | undefined): Promise<void> {
    const row = await this.find(key);
    if (self?.id === row.id) throw AdminError.message(400, 'an admin cannot delete itself');
    await this.db.delete(admins).where(eq(admins.id, row.id));
  }
}
