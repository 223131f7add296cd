// Portico Manager's listener (PORTICO_GUI_LISTEN): the built single-page app, `/api/*` handed to the
// admin API in-process, and `/gui/traffic` for the overview charts.
//
// Why same origin rather than CORS: the page and its API calls share one origin, so the admin API
// needs no CORS entry for the GUI, and the token travels only in a header the page sets from
// sessionStorage (never a cookie, never a URL). A cookie-less API cannot be driven by another
// tab's forged request: without the token it is answered 401. What the proxy adds on top:
// - it answers only same-origin requests (Fetch metadata and Origin), so a hostile page cannot use
//   it even while the admin API is open on loopback without admins;
// - it keeps the client's Host, so the admin API's DNS-rebinding check still sees a foreign name;
// - it passes the client's socket, so failed-token limits and the audit log see the real address;
// - every page carries a strict Content-Security-Policy: scripts and styles from this origin only,
//   connections to this origin only, no framing.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono, type Context } from 'hono';
import type { Logger } from '@portico/shared';
import type { TrafficHistory } from './metrics.ts';

export const API_PREFIX = '/api';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2',
};

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
  "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

interface Asset { body: Buffer; type: string; immutable: boolean }

/**
 * Where `npm run build` put the app: beside the CP bundle (control-plane/dist/gui), or, for the
 * all-in-one bundle at the root's dist/, in the CP package's dist. Null when it was never built.
 */
export function findGuiDir(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'gui'), path.join(here, '../control-plane/dist/gui'), path.join(here, '../../dist/gui')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? null;
}

/** The built files, read once: the set of paths is fixed, so no request path ever reaches the file system. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) { walk(p); continue; }
      const rel = '/' + path.relative(dir, p).split(path.sep).join('/');
      assets.set(rel, { body: readFileSync(p), type: CONTENT_TYPES[path.extname(p)] ?? 'application/octet-stream', immutable: rel.startsWith('/assets/') });
    }
  };
  walk(dir);
  return assets;
}

/** A browser request another origin made (or a rebound name's page) must not reach the admin API through us. */
function crossOrigin(c: Context): string | null {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a ${site} request`;
  const origin = c.req.header('origin');
  if (origin !== undefined && origin !== `http://${c.req.header('host')}` && origin !== `https://${c.req.header('host')}`) return `origin '${origin.slice(0, 80)}'`;
  return null;
}

export interface GuiDeps {
  admin: Hono;
  traffic: TrafficHistory;
  log: Logger;
  dir?: string | null;
}

export function createGuiApp(deps: GuiDeps): Hono {
  const dir = deps.dir === undefined ? findGuiDir() : deps.dir;
  const assets = dir ? loadAssets(dir) : new Map<string, Asset>();
  if (!dir) deps.log.warn('Portico Manager is not built (npm run build): its listener answers 503');
  const app = new Hono();

  /** Hands a request to the admin app as if it came straight from the client, minus what marks it a browser's. */
  const toAdmin = (c: Context, adminPath: string, method = c.req.method) => {
    const url = new URL(c.req.url);
    const headers = new Headers(c.req.raw.headers);
    for (const h of ['origin', 'cookie', 'referer']) headers.delete(h);
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const req = new Request(`http://${c.req.header('host') ?? 'localhost'}${adminPath}${url.search}`, {
      method, headers, body: hasBody ? c.req.raw.body : undefined, ...(hasBody ? { duplex: 'half' } : {}),
    } as RequestInit);
    return deps.admin.fetch(req, { incoming: c.env?.incoming });
  };

  app.use('*', async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
    // Admin answers can hold a key shown once: no cache keeps them.
    if (c.req.path.startsWith(`${API_PREFIX}/`) || c.req.path.startsWith('/gui/')) c.header('Cache-Control', 'no-store');
  });

  app.all(`${API_PREFIX}/*`, async (c) => {
    const refused = crossOrigin(c);
    if (refused) return c.json({ message: `Portico Manager's API answers only its own pages, not ${refused}` }, 403);
    return toAdmin(c, c.req.path.slice(API_PREFIX.length) || '/');
  });

  // The overview's traffic: any signed-in role may see it (the admin API's /userinfo decides who is signed in).
  app.get('/gui/traffic', async (c) => {
    const refused = crossOrigin(c);
    if (refused) return c.json({ message: `answered only to Portico Manager's own pages, not ${refused}` }, 403);
    const allowed = await toAdmin(c, '/userinfo', 'GET');
    if (!allowed.ok) return allowed;
    return c.json(deps.traffic.view());
  });

  app.get('*', (c) => {
    const asset = assets.get(c.req.path) ?? (c.req.path.startsWith('/assets/') ? undefined : assets.get('/index.html'));
    if (!asset) return c.body(dir ? 'Not found' : 'Portico Manager is not built: run npm run build', dir ? 404 : 503);
    return c.body(new Uint8Array(asset.body), 200, {
      'Content-Type': asset.type,
      'Cache-Control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
  });
  app.all('*', (c) => c.json({ message: 'Method not allowed' }, 405));
  return app;
}
