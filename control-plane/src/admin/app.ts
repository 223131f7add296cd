// The Kong-compatible admin API. Routes are thin: they parse, call a store verb, and answer.
// Every entity's endpoints are generated from its definition (reference/kong-compat.md §1.2).
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Hono, type Context } from 'hono';
import type { Logger } from 'pino';
import { AdminError, PORTICO_VERSION, UUID_RE } from '@portico/shared';
import type { Database } from '../db/index.ts';
import { coercionSchema, collectionPath, ENTITIES, ENTITY_BY_NAME, type EntityDef, type ForeignKey } from '../services/entity.ts';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
import {
  createEntity, deleteEntity, getEntity, listEntities, parseSize, requireEntity, updateEntity, upsertEntity, validateOnly,
  type Entity, type ListQuery, type Page,
} from '../services/store.ts';
import { AUDIT_FILTERS, listAudit, verifyAudit, type AuditQuery, type WriteContext } from '../services/audit.ts';
import type { DataPlaneRegistry } from '../cluster/registry.ts';
import type { SnapshotLoop } from '../snapshot/builder.ts';
import { readBody } from './body.ts';
import { clientError } from '../db/errors.ts';
import { entitySchemaJson, pluginSchemaJson } from './schemas.ts';
import { plugins as pluginsTable } from '../db/schema.ts';
import { clientAddress, type AdminAuth, type AdminIdentity } from './auth.ts';
import { configRoutes } from './config-routes.ts';
import { proxyCacheRoutes, type ProxyCacheRouteDeps } from './proxy-cache.ts';

export interface AdminDeps {
  database: Database;
  snapshots: SnapshotLoop;
  registry: DataPlaneRegistry;
  nodeId: string;
  role: 'control_plane' | 'traditional';
  /**
   * An upstream's health as a data plane sees it, when one runs beside this CP (the all-in-one's
   * composition root provides it); a CP alone has none and points at the DPs' status listeners.
   */
  upstreamHealth?: (upstream: string) => unknown | null;
  /** Sends a health override to every DP over the bus, signed. */
  sendHealth(override: { upstream: string; target: string; healthy: boolean }): Promise<void>;
  /** Sends a proxy-cache purge or lookup to every DP over the bus, signed (admin/proxy-cache.ts). */
  sendCache?: ProxyCacheRouteDeps['sendCache'];
  log: Logger;
  auth: AdminAuth;
  /**
   * The CP's Prometheus registry, served on GET /metrics as Kong's admin API does (with admin auth):
   * in the all-in-one the status listener's /metrics is the data plane's.
   */
  metrics?: { text(): Promise<string>; registry: { contentType: string } };
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Kong's version whose admin API this one follows (reference/kong-compat.md, meta version). */
export const KONG_COMPATIBLE_VERSION = '3.10.0';
type Handler = (c: Context) => Promise<Response> | Response;

export function createAdminApp(deps: AdminDeps): Hono {
  const { database, snapshots } = deps;
  const db = database.db;
  const pluginDef = ENTITY_BY_NAME.get('plugins')!;
  const app = new Hono({ strict: false });
  const endpoints: string[] = [];

  // Every answer names its request; the audit log records the same id. The id is always ours: one
  // a client sent could collide with, or impersonate, another request's in the log.
  app.use('*', async (c, next) => {
    counters.total_requests++;
    const started = performance.now();
    const requestId = randomUUID();
    c.set('requestId' as never, requestId as never);
    await next();
    if (c.res.headers.get('content-type') === 'application/json') c.header('Content-Type', 'application/json; charset=utf-8');
    c.header('X-Portico-Admin-Latency', String(Math.round(performance.now() - started)));
    c.header('X-Portico-Request-Id', requestId);
  });
  app.use('*', deps.auth.cors());
  app.use('*', deps.auth.middleware());

  // Path parameters are decoded once, by Hono's `c.req.param()`. A path whose escapes do not
  // decode (`%`, `%ZZ`, a cut UTF-8 sequence) would reach handlers undecoded, so it is refused
  // here, before routing (probe 4.10, review C12).
  app.use('*', async (c, next) => {
    const raw = c.req.url.slice(c.req.url.indexOf('/', c.req.url.indexOf('//') + 2)).split(/[?#]/, 1)[0];
    if (raw.includes('%')) {
      try { decodeURIComponent(raw); } catch { throw AdminError.message(400, 'invalid percent-encoding in the request path'); }
    }
    await next();
  });

  app.onError((err, c) => {
    const known = err instanceof AdminError ? err : clientError(err);
    if (known) {
      if (known.status === 415) return c.body(null, 415);
      return c.json(known.body, known.status as 400);
    }
    deps.log.error({ err }, 'admin request failed');
    return c.json({ message: 'An unexpected error occurred' }, 500);
  });
  app.notFound((c) => c.json({ message: 'Not found' }, 404));

  /** Register a resource: its verbs, OPTIONS, and 405 for the rest. */
  function resource(path: string, handlers: Partial<Record<Method, Handler>>): void {
    endpoints.push(path.replace(/:(\w+)/g, '{$1}'));
    const allowed = [...Object.keys(handlers), ...(handlers.GET ? ['HEAD'] : []), 'OPTIONS'].sort();
    for (const [method, h] of Object.entries(handlers)) app.on(method, path, h as Handler);
    app.options(path, (c) => {
      c.header('Allow', allowed.join(', '));
      return c.body(null, 204);
    });
    app.all(path, (c) => c.json({ message: 'Method not allowed' }, 405));
  }

  /** Who writes and from where: what the store's write hook audits and scopes by tags. */
  const ctx = (c: Context): WriteContext => {
    const who = c.get('admin' as never) as AdminIdentity | undefined;
    return {
      actor: who ? { id: who.id, username: who.username, token_prefix: who.token_prefix, tags: who.tags } : null,
      method: c.req.method, path: c.req.path, client_ip: clientAddress(c), request_id: c.get('requestId' as never) as string,
    };
  };

  /** After a committed write: schedule a snapshot and tell the client which config version holds it. */
  const written = <T>(c: Context, r: T & { version?: number }): T => {
    if (r.version !== undefined) {
      snapshots.changed();
      c.header('X-Portico-Config-Version', String(r.version));
    }
    return r;
  };
  const query = (c: Context, def?: EntityDef): ListQuery => {
    const where: Record<string, string> = {};
    for (const f of def?.listFilters ?? []) {
      const v = c.req.query(f);
      if (v === undefined) continue;
      if (v === '') throw AdminError.message(400, `${f} must be an unempty string`);
      where[f] = v;
    }
    const conditions = def?.listConditions?.((name) => c.req.query(name));
    return { size: c.req.query('size'), offset: c.req.query('offset'), tags: c.req.query('tags'), where, conditions };
  };

  function pageBody(c: Context, page: Page, base: string, topLevel: boolean) {
    if (!page.offset) return { data: page.data, next: null };
    const params = new URLSearchParams({ offset: page.offset });
    if (topLevel) {
      const size = c.req.query('size'); const tags = c.req.query('tags');
      if (tags) params.set('tags', tags);
      if (size) params.set('size', size);
    }
    return { data: page.data, offset: page.offset, next: `${base}?${params.toString()}` };
  }

  /** Read a write body; form values are coerced against the schema (a plugin's by its name). */
  const body = async (c: Context, def: EntityDef, existingKey?: string) => {
    let existing: Entity | undefined;
    return readBody(c, async (raw) => {
      if (!def.formSchema) return coercionSchema(def);
      if (raw.name === undefined && existingKey) existing = await getEntity(db, def, existingKey);
      return def.formSchema(raw, existing);
    });
  };
  /** A path parameter, decoded once (by Hono). NUL can be in no stored key (Postgres refuses it). */
  const key = (c: Context, name = 'key') => {
    const k = c.req.param(name)!;
    if (k.includes('\0')) throw AdminError.message(400, `invalid path parameter '${name}': contains NUL`);
    return k;
  };

  // Admins and their tokens (admin role only; see auth.ts). A token is in the create/rotate answer only.
  const plain = (c: Context) => readBody(c, () => undefined);
  resource('/admins', {
    GET: async (c) => c.json({ data: await deps.auth.list(), next: null }),
    POST: async (c) => c.json(await deps.auth.create(ctx(c), await plain(c)), 201),
  });
  resource('/admins/:key', {
    GET: async (c) => { const { token_hash: _h, ...rest } = await deps.auth.find(key(c)); return c.json(rest); },
    DELETE: async (c) => { await deps.auth.remove(ctx(c), key(c)); return c.body(null, 204); },
  });
  resource('/admins/:key/token', { POST: async (c) => c.json(await deps.auth.rotate(ctx(c), key(c), await plain(c)), 201) });
  resource('/userinfo', {
    GET: (c) => {
      const who = c.get('admin' as never) as AdminIdentity | undefined;
      return c.json({ admin: who ? { id: who.id, username: who.username, role: who.role, tags: who.tags } : null, authentication: deps.auth.enabled ? 'token' : 'off (loopback only)' });
    },
  });

  // The audit log (admin and auditor only; see auth.ts). Nothing writes it but the store's hook.
  resource('/audit/requests', {
    GET: async (c) => {
      const q: AuditQuery = { offset: c.req.query('offset') };
      const params = new URLSearchParams();
      for (const f of AUDIT_FILTERS) {
        const v = c.req.query(f);
        if (v === undefined) continue;
        if (v === '') throw AdminError.message(400, `${f} must be an unempty string`);
        q[f] = v; params.set(f, v);
      }
      const size = c.req.query('size');
      const page = await listAudit(db, q, parseSize(size));
      if (!page.offset) return c.json({ data: page.data, next: null });
      if (size) params.set('size', size);
      params.set('offset', page.offset);
      return c.json({ data: page.data, offset: page.offset, next: `/audit/requests?${params.toString()}` });
    },
  });
  resource('/audit/verify', { GET: async (c) => c.json(await verifyAudit(db)) });

  configRoutes({ db, resource, ctx, written, currentHash: () => snapshots.latest?.hash });
  if (deps.sendCache) proxyCacheRoutes({ db, registry: deps.registry, resource, sendCache: deps.sendCache });

  // Before `/schemas/plugins/:name`, which would otherwise catch it (decK's `gateway validate`).
  resource('/schemas/plugins/validate', {
    POST: async (c) => {
      validateOnly(pluginDef, await body(c, pluginDef));
      return c.json({ message: 'schema validation successful' });
    },
  });
  resource('/plugins/enabled', { GET: (c) => c.json({ enabled_plugins: [...PLUGIN_DEFINITIONS.keys()].sort() }) });
  resource('/schemas/plugins/:name', {
    GET: (c) => {
      const plugin = PLUGIN_DEFINITIONS.get(c.req.param('name')!);
      if (!plugin) return c.json({ message: `No plugin named '${c.req.param('name')}'` }, 404);
      return c.json(pluginSchemaJson(plugin.configSchema));
    },
  });

  // Upstream health lives on data planes (per node, as Kong's). All-in-one answers from its own DP.
  const upstreamDef = ENTITY_BY_NAME.get('upstreams')!;
  const targetDef = ENTITY_BY_NAME.get('targets')!;
  const healthOf = (upstream: string) => {
    if (!deps.upstreamHealth) {
      throw AdminError.message(400, 'health is tracked per data-plane node: ask a data plane\'s status listener (GET /upstreams/{upstream}/health on PORTICO_STATUS_LISTEN)');
    }
    return deps.upstreamHealth(upstream);
  };
  resource('/upstreams/:parent/targets/all', {
    GET: async (c) => {
      const parent = await requireEntity(db, upstreamDef, key(c, 'parent'));
      return c.json(pageBody(c, await listEntities(db, targetDef, { ...query(c), where: { upstream_id: parent.id } }), `/upstreams/${parent.id}/targets/all`, false));
    },
  });
  resource('/upstreams/:parent/health', {
    GET: async (c) => {
      const parent = await requireEntity(db, upstreamDef, key(c, 'parent'));
      return c.json(healthOf(parent.name as string) ?? { data: [], next: null, node_id: deps.nodeId });
    },
  });
  // Overrides are authorized here and reach every DP over the bus, signed (a DP's status listener is
  // read-only). Like Kong's, they last until the next health change on that node or its restart.
  for (const state of ['healthy', 'unhealthy']) {
    resource(`/upstreams/:parent/targets/:key/${state}`, {
      PUT: async (c) => {
        const parent = await requireEntity(db, upstreamDef, key(c, 'parent'));
        const target = await getEntity(db, targetDef, key(c), { upstream_id: parent.id });
        if (!target) throw AdminError.message(404, 'Not found');
        try {
          await deps.sendHealth({ upstream: parent.name as string, target: target.target as string, healthy: state === 'healthy' });
        } catch (err) {
          throw AdminError.message(503, `the data planes could not be reached: ${(err as Error).message}`);
        }
        return c.body(null, 204);
      },
    });
  }

  for (const def of ENTITIES) {
    const col = `/${collectionPath(def)}`;
    for (const fk of def.foreignKeys) nested(def, fk);
    if (def.nestedOnly) continue;
    resource(col, {
      GET: async (c) => c.json(pageBody(c, await listEntities(db, def, query(c, def)), col, true)),
      POST: async (c) => c.json(written(c, await createEntity(db, ctx(c), def, await body(c, def))).entity, 201),
    });
    /** A top-level item key: an id, or the endpoint key where it is unique across parents. */
    const itemKey = (c: Context) => {
      const k = key(c);
      if (def.endpointKeyNestedOnly && !UUID_RE.test(k)) throw AdminError.message(404, 'Not found');
      return k;
    };
    resource(`${col}/:key`, {
      GET: async (c) => c.json(await requireEntity(db, def, itemKey(c))),
      PUT: async (c) => c.json(written(c, await upsertEntity(db, ctx(c), def, itemKey(c), await body(c, def, key(c)))).entity, 200),
      PATCH: async (c) => c.json(written(c, await updateEntity(db, ctx(c), def, itemKey(c), await body(c, def, key(c)))).entity, 200),
      DELETE: async (c) => { written(c, await deleteEntity(db, ctx(c), def, itemKey(c))); return c.body(null, 204); },
    });
  }

  /** `/services/{s}/routes[/{r}]` and `/routes/{r}/service`. */
  function nested(def: EntityDef, fk: ForeignKey): void {
    const parentDef = ENTITY_BY_NAME.get(fk.entity)!;
    const base = `/${collectionPath(parentDef)}/:parent/${fk.nestedPath ?? collectionPath(def)}`;
    const parentOf = (c: Context) => requireEntity(db, parentDef, key(c, 'parent'));
    resource(base, {
      GET: async (c) => {
        const parent = await parentOf(c);
        const page = await listEntities(db, def, { ...query(c), where: { [`${fk.field}_id`]: parent.id } });
        return c.json(pageBody(c, page, `/${collectionPath(parentDef)}/${encodeURIComponent(key(c, 'parent'))}/${fk.nestedPath ?? collectionPath(def)}`, false));
      },
      POST: async (c) => {
        const parent = await parentOf(c);
        const input = await body(c, def);
        return c.json(written(c, await createEntity(db, ctx(c), def, { ...input, [fk.field]: { id: parent.id } })).entity, 201);
      },
    });
    const within = (parent: Entity) => ({ [`${fk.field}_id`]: parent.id });
    resource(`${base}/:key`, {
      GET: async (c) => {
        const parent = await parentOf(c);
        const e = await getEntity(db, def, key(c), within(parent));
        if (!e) throw AdminError.message(404, 'Not found');
        return c.json(e);
      },
      PUT: async (c) => {
        const parent = await parentOf(c);
        const input = await body(c, def, key(c));
        return c.json(written(c, await upsertEntity(db, ctx(c), def, key(c), input, { [fk.field]: { id: parent.id } }, within(parent))).entity, 200);
      },
      PATCH: async (c) => {
        const parent = await parentOf(c);
        return c.json(written(c, await updateEntity(db, ctx(c), def, key(c), await body(c, def, key(c)), within(parent))).entity, 200);
      },
      DELETE: async (c) => {
        const parent = await parentOf(c);
        const r = written(c, await deleteEntity(db, ctx(c), def, key(c), within(parent)));
        if (!r.deleted) throw AdminError.message(404, 'Not found');
        return c.body(null, 204);
      },
    });
    const parentOfChild = async (c: Context) => {
      const child = await requireEntity(db, def, key(c));
      const ref = child[fk.field] as { id: string } | null;
      if (!ref) throw AdminError.message(404, 'Not found');
      return ref.id;
    };
    if (def.nestedOnly) return;
    resource(`/${collectionPath(def)}/:key/${fk.field}`, {
      GET: async (c) => c.json(await requireEntity(db, parentDef, await parentOfChild(c))),
      PUT: async (c) => c.json(written(c, await upsertEntity(db, ctx(c), parentDef, await parentOfChild(c), await body(c, parentDef))).entity, 200),
      PATCH: async (c) => c.json(written(c, await updateEntity(db, ctx(c), parentDef, await parentOfChild(c), await body(c, parentDef))).entity, 200),
    });
  }

  resource('/schemas/:entity', {
    GET: (c) => {
      const def = ENTITY_BY_NAME.get(c.req.param('entity')!);
      if (!def) return c.json({ message: `No entity named '${c.req.param('entity')}'` }, 404);
      return c.json(entitySchemaJson(def));
    },
  });
  resource('/schemas/:entity/validate', {
    POST: async (c) => {
      const def = ENTITY_BY_NAME.get(c.req.param('entity')!);
      if (!def) return c.json({ message: `No entity named '${c.req.param('entity')}'` }, 404);
      validateOnly(def, await body(c, def));
      return c.json({ message: 'schema validation successful' });
    },
  });

  resource('/clustering/data-planes', {
    GET: async (c) => c.json({ data: await deps.registry.list(snapshots.latest), next: null }),
  });

  resource('/status', {
    GET: async (c) => c.json({
      server: serverCounters(),
      database: { reachable: await database.ping() },
      configuration: snapshots.latest
        ? { version: snapshots.latest.version, hash: snapshots.latest.hash, built_at: snapshots.latest.built_at, size_bytes: snapshots.latest.size_bytes }
        : null,
      memory: { rss_bytes: process.memoryUsage.rss() },
    }),
  });

  if (deps.metrics) {
    const metrics = deps.metrics;
    resource('/metrics', { GET: async (c) => c.text(await metrics.text(), 200, { 'content-type': metrics.registry.contentType }) });
  }

  const enabledInCluster = async () => {
    const rows = await db.selectDistinct({ name: pluginsTable.name }).from(pluginsTable);
    return rows.map((r) => r.name).sort();
  };
  resource('/', {
    GET: async (c) => c.json({
      tagline: 'Welcome to portico',
      // The Kong admin API Portico implements: decK and other Kong tools switch features on it.
      version: KONG_COMPATIBLE_VERSION,
      portico_version: PORTICO_VERSION,
      edition: 'community',
      hostname: os.hostname(),
      node_id: deps.nodeId,
      plugins: {
        available_on_server: Object.fromEntries([...PLUGIN_DEFINITIONS.values()].map((p) => [p.name, { version: PORTICO_VERSION, priority: p.priority }])),
        enabled_in_cluster: await enabledInCluster(),
      },
      configuration: { database: 'postgres', role: deps.role, router_flavor: 'traditional_compatible', embedded_database: database.kind === 'pglite' },
      pids: { master: process.pid, workers: [process.pid] },
    }),
  });
  resource('/endpoints', { GET: (c) => c.json({ data: [...endpoints].sort(), next: null }) });

  return app;
}

/** Request counters for `/status`. */
const counters = { total_requests: 0 };
function serverCounters() {
  return { total_requests: counters.total_requests };
}
