// Who may use the admin API (ARCHITECTURE.md invariant 9; reference/edge-design.md §6). Kong OSS
// has no admin authentication and sells RBAC; Portico has it free:
// - admins with tokens: a recognisable prefix (secret scanners find leaks), shown once, stored as
//   SHA-256, optionally expiring, revoked at once by deleting or rotating;
// - roles: admin (everything), editor (config entities), viewer (reads, secrets redacted),
//   auditor (the audit trail); an editor created with tags writes only entities carrying one of
//   them (enforced in the store's write transaction, services/audit.ts), reads stay unrestricted;
// - every /admins write is audited in its own transaction, like entity writes;
// - `Kong-Admin-Token` (Kong's and decK's header) or `Authorization: Bearer`;
// - failed attempts limited per client address;
// - with no admin configured the API stays open, but only to loopback clients that are not a web
//   page (a foreign Origin, or a Host that is not loopback — DNS rebinding — is refused);
// - CORS only for the origins in PORTICO_ADMIN_GUI_ORIGINS, never a wildcard.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { count, eq, sql } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import { LRUCache } from 'lru-cache';
import { AdminError, EnvError, ErrorCode, luaKey, hostOf, isLoopbackHost, parseIpInto, readVariableFile, schemaViolation, tagError, type Env, type Logger } from '@portico/shared';
import type { Db, Executor, Tx } from '../db/index.ts';
import { admins } from '../db/schema.ts';
import { appendAudit, type Actor, type WriteContext } from '../services/audit.ts';
import { redact } from '../services/redact.ts';
import { lockConfig } from '../services/store.ts';

export const ROLES = ['admin', 'editor', 'viewer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];
export interface AdminIdentity extends Actor { role: Role }

/** Portico admin tokens start with this, so leak scanners can match them. */
export const TOKEN_PREFIX = 'ptc_adm_';
const BOOTSTRAP_USERNAME = 'admin';
/** Failed authentications allowed per client address and window before 429. */
const MAX_FAILURES = 20;
const FAILURE_WINDOW_MS = 60_000;
/** Tags one admin may be scoped to. */
const MAX_ADMIN_TAGS = 32;

/**
 * What lists show of a token: `ptc_adm_` and 4 random characters for generated tokens, nothing of
 * an operator-chosen one (its first characters may be most of it).
 */
const prefixOf = (token: string) => (token.startsWith(TOKEN_PREFIX) ? token.slice(0, TOKEN_PREFIX.length + 4) : '');
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The failed-attempt limiter's key: the address, or its /64 for IPv6 (one host holds a whole /64). */
function limiterKey(address: string): string {
  const words = new Uint32Array(4);
  if (parseIpInto(address, 0, address.length, words) !== 6) return address;
  return `${words[0].toString(16)}:${words[1].toString(16)}::/64`;
}


/** PORTICO_ADMIN_TOKEN or the file PORTICO_ADMIN_TOKEN_FILE names. */
export function bootstrapToken(env: Env): string | undefined {
  let token = env.PORTICO_ADMIN_TOKEN;
  if (env.PORTICO_ADMIN_TOKEN_FILE) {
    if (token) throw new EnvError('PORTICO_ADMIN_TOKEN and PORTICO_ADMIN_TOKEN_FILE are both set; set one');
    token = readVariableFile(env.PORTICO_ADMIN_TOKEN_FILE, 'PORTICO_ADMIN_TOKEN_FILE').toString('utf8').trim();
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

/** The client's address as the socket has it; forwarding headers are the client's to forge. */
export const clientAddress = (c: Context): string => c.env?.incoming?.socket?.remoteAddress ?? 'unknown';

export class AdminAuth {
  /** Authentication is on once an admin exists (bootstrapped from the environment or created). */
  enabled = false;
  private failures = new LRUCache<string, { count: number; until: number }>({ max: 10_000, ttl: FAILURE_WINDOW_MS });
  private readonly origins: Set<string>;
  /**
   * The per-request token lookup, built and named once: it skips drizzle's query building and, on
   * Postgres, the server's parse and plan (0.62 → 0.39 ms a lookup on PGlite), a third of what
   * authentication adds to an admin request. Not cached: a revoked token must fail on every CP at once.
   */
  private readonly byTokenHash;

  constructor(private db: Db, private log: Logger, origins: string[]) {
    this.origins = new Set(origins);
    this.byTokenHash = db.select().from(admins).where(eq(admins.token_hash, sql.placeholder('hash'))).limit(1).prepare('portico_admin_by_token_hash');
  }

  /** Bootstraps the first admin from the environment and decides whether authentication is on. */
  async init(token: string | undefined): Promise<void> {
    if (token) {
      const hash = hashToken(token);
      await this.db.insert(admins).values({
        id: randomUUID(), created_at: nowSeconds(), username: BOOTSTRAP_USERNAME, role: 'admin',
        token_hash: hash, token_prefix: prefixOf(token), expires_at: null,
      }).onConflictDoUpdate({ target: admins.username, set: { token_hash: hash, token_prefix: prefixOf(token), role: 'admin', expires_at: null } });
    }
    await this.refresh();
  }

  private async refresh(): Promise<void> {
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
        c.header('Access-Control-Expose-Headers', 'X-Portico-Config-Version, X-Portico-Request-Id');
      }
    };
  }

  /** Authenticates and authorizes every request except `GET /status` (probes) and CORS preflights. */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const path = c.req.path;
      if (path === '/status' && (c.req.method === 'GET' || c.req.method === 'HEAD')) return next();
      // Another CP may have created the first admin since: look again before serving openly.
      if (!this.enabled) await this.refresh();
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
    // Fetch metadata: a browser marks a request another site made, Origin or not (a no-cors GET).
    if (c.req.header('sec-fetch-site') === 'cross-site') throw AdminError.message(403, 'cross-site requests are refused');
    const origin = c.req.header('origin');
    if (origin !== undefined && !this.origins.has(origin)) {
      throw AdminError.message(403, `requests from web origin '${origin}' are refused: add it to PORTICO_ADMIN_GUI_ORIGINS`);
    }
    const host = hostOf(c.req.header('host') ?? '');
    if (!isLoopbackHost(host)) throw AdminError.message(403, `the admin API has no admins configured and answers only on loopback, not for Host '${host}'`);
  }

  /**
   * A valid token always passes; only failures are limited, per client address (a /64 for IPv6), so
   * someone sharing an address (a proxy in front of the admin API) cannot lock the admins out. The
   * count is taken after the lookup, from the entry as it is then, so concurrent failures all count.
   */
  private async authenticate(c: Context): Promise<AdminIdentity> {
    const source = limiterKey(clientAddress(c));
    const bearer = c.req.header('authorization');
    const token = c.req.header('kong-admin-token') ?? (bearer?.toLowerCase().startsWith('bearer ') ? bearer.slice(7).trim() : undefined);
    // No token at all is not a guess: it is answered 401 and not counted.
    if (!token) throw AdminError.message(401, 'Invalid credentials. Token or User credentials required');
    const hash = hashToken(token);
    const [row] = await this.byTokenHash.execute({ hash });
    const good = row !== undefined && timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(hash))
      && (row.expires_at === null || row.expires_at > nowSeconds());
    if (!good) {
      const now = Date.now();
      const entry = this.failures.get(source) ?? { count: 0, until: now + FAILURE_WINDOW_MS };
      entry.count++;
      this.failures.set(source, entry, { ttl: Math.max(1, entry.until - now) });
      if (entry.count > MAX_FAILURES) {
        c.header('Retry-After', String(Math.max(1, Math.ceil((entry.until - now) / 1000))));
        throw AdminError.message(429, 'Too many failed authentication attempts; try again later');
      }
      this.log.warn({ source, reason: row ? 'expired' : 'unknown token' }, 'admin authentication failed');
      throw AdminError.message(401, row ? 'Token expired' : 'Invalid credentials. Token or User credentials required');
    }
    return { id: row.id, username: row.username, role: row.role as Role, token_prefix: row.token_prefix, tags: row.tags };
  }

  // --- the /admins verbs ---

  private static view(row: typeof admins.$inferSelect) {
    return { id: row.id, created_at: row.created_at, username: row.username, role: row.role, tags: row.tags, token_prefix: row.token_prefix, expires_at: row.expires_at };
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

  async find(key: string, ex: Executor = this.db) {
    const [row] = await ex.select().from(admins).where(/^[0-9a-f-]{36}$/i.test(key) ? eq(admins.id, key) : eq(admins.username, key)).limit(1);
    if (!row) throw AdminError.message(404, 'Not found');
    return row;
  }

  /** Validates the tags an editor is scoped to; null: unrestricted. */
  private static tags(raw: unknown, role: unknown, errors: { path: (string | number)[]; message: string }[]): string[] | null {
    if (raw === undefined || raw === null) return null;
    if (role !== 'editor') { errors.push({ path: ['tags'], message: 'tags scope an editor\'s writes; only role editor takes them' }); return null; }
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_ADMIN_TAGS) {
      errors.push({ path: ['tags'], message: `expected an array of 1 to ${MAX_ADMIN_TAGS} tags` }); return null;
    }
    raw.forEach((t, i) => {
      const e = typeof t === 'string' ? tagError(t) : 'expected a string';
      if (e) errors.push({ path: ['tags', i], message: e });
    });
    return raw as string[];
  }

  /** Runs an /admins write under the config lock with its audit entry, in one transaction. */
  private audited<T>(ctx: WriteContext, fn: (tx: Tx) => Promise<{ result: T; entity: ReturnType<typeof AdminAuth.view> }>): Promise<T> {
    return this.db.transaction(async (tx) => {
      const version = await lockConfig(tx);
      const { result, entity } = await fn(tx);
      await appendAudit(tx, ctx, { entity_type: 'admins', entity_id: entity.id, entity, config_version: version });
      return result;
    });
  }

  /** Creates an admin; the token is in this answer only. */
  async create(ctx: WriteContext, input: Record<string, unknown>) {
    const errors: { path: (string | number)[]; message: string }[] = [];
    const username = input.username;
    if (typeof username !== 'string' || !/^[A-Za-z0-9._@-]{1,128}$/.test(username)) errors.push({ path: ['username'], message: 'required: 1-128 letters, digits, or . _ @ -' });
    if (!ROLES.includes(input.role as Role)) errors.push({ path: ['role'], message: `expected one of: ${ROLES.join(', ')}` });
    const tags = AdminAuth.tags(input.tags, input.role, errors);
    for (const k of Object.keys(input)) if (!['username', 'role', 'ttl', 'tags'].includes(k)) errors.push({ path: [k], message: 'unknown field' });
    if (errors.length) throw schemaViolation(errors);
    const token = AdminAuth.newToken();
    const row = {
      id: randomUUID(), created_at: nowSeconds(), username: username as string, role: input.role as string, tags,
      token_hash: hashToken(token), token_prefix: prefixOf(token), expires_at: AdminAuth.expiry(input.ttl),
    };
    const view = AdminAuth.view(row);
    await this.audited(ctx, async (tx) => {
      const [existing] = await tx.select({ id: admins.id }).from(admins).where(eq(admins.username, row.username)).limit(1);
      if (existing) {
        throw AdminError.of(409, ErrorCode.UNIQUE_VIOLATION, `UNIQUE violation detected on '${luaKey({ username: row.username })}'`, { fields: { username: row.username } });
      }
      await tx.insert(admins).values(row);
      return { result: undefined, entity: view };
    });
    this.enabled = true;
    return { ...view, token };
  }

  /** A new token for an admin; the old one stops working at once. */
  async rotate(ctx: WriteContext, key: string, input: Record<string, unknown>) {
    const expires = AdminAuth.expiry(input.ttl);
    const token = AdminAuth.newToken();
    const next = { token_hash: hashToken(token), token_prefix: prefixOf(token), expires_at: expires };
    const view = await this.audited(ctx, async (tx) => {
      const row = await this.find(key, tx);
      await tx.update(admins).set(next).where(eq(admins.id, row.id));
      const entity = AdminAuth.view({ ...row, ...next });
      return { result: entity, entity };
    });
    return { ...view, token };
  }

  async remove(ctx: WriteContext, key: string): Promise<void> {
    await this.audited(ctx, async (tx) => {
      const row = await this.find(key, tx);
      if (ctx.actor?.id === row.id) throw AdminError.message(400, 'an admin cannot delete itself');
      await tx.delete(admins).where(eq(admins.id, row.id));
      return { result: undefined, entity: AdminAuth.view(row) };
    });
  }
}
