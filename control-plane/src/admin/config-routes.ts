// /config: the whole configuration as one declarative file (import, export, dry run), and its
// history (/config/versions, diff, rollback). Kong has POST/GET /config only without a database;
// Portico has them on Postgres and PGlite alike, each import one transaction and one version.
import type { Context } from 'hono';
import { stringify } from 'yaml';
import { AdminError } from '@portico/shared';
import type { Db } from '../db/index.ts';
import type { WriteContext } from '../services/audit.ts';
import { redact } from '../services/redact.ts';
import { parseSize } from '../services/store.ts';
import {
  DeclarativeError, declarativeError, diffVersions, exportDocument, importDocument, listVersions, loadState, parseText,
  planBody, rollbackTo, versionDocument,
} from '../declarative/index.ts';
import type { ReplaceResult } from '../declarative/apply.ts';
import type { AdminIdentity } from './auth.ts';
import { readLimited } from './body.ts';

type Handler = (c: Context) => Promise<Response> | Response;

export interface ConfigRouteDeps {
  db: Db;
  resource(path: string, handlers: Partial<Record<'GET' | 'POST', Handler>>): void;
  ctx(c: Context): WriteContext;
  written<T>(c: Context, r: T & { version?: number }): T;
  /** The hash data planes run now (for `check_hash`). */
  currentHash(): string | undefined;
}

const isViewer = (c: Context) => (c.get('admin' as never) as AdminIdentity | undefined)?.role === 'viewer';
const flag = (c: Context, name: string) => ['1', 'true', 'yes', 'on'].includes((c.req.query(name) ?? '').toLowerCase());

/** Kong's body: the config itself (JSON or YAML), or `{"config": "<yaml or json text>"}`. */
async function readConfigBody(c: Context) {
  const text = new TextDecoder().decode(await readLimited(c));
  if (!text.trim()) throw AdminError.message(400, 'expected a declarative configuration');
  let parsed: { doc: unknown; lineOf?: (path: (string | number)[]) => number | undefined };
  // JSON (what the CLI sends) by JSON.parse, which skips the YAML reader's node tree and positions.
  // Lines are a YAML reader's help; a JSON body that does not parse is read as YAML for its line.
  try {
    if (!c.req.header('content-type')?.includes('json')) throw new Error('not JSON');
    parsed = { doc: JSON.parse(text) };
  } catch {
    parsed = parseText(text);
  }
  const doc = parsed.doc as Record<string, unknown> | null;
  if (doc && typeof doc === 'object' && typeof doc.config === 'string' && Object.keys(doc).length === 1) parsed = parseText(doc.config);
  return parsed;
}

/** A file as an answer: YAML inside Kong's `{"config": …}`, secrets hidden from viewers. */
const fileBody = (c: Context, doc: Record<string, unknown>) => stringify(isViewer(c) ? redact(doc) : doc, { lineWidth: 0 });

function versionParam(c: Context, name: string): number {
  const raw = c.req.param(name)!;
  if (!/^[1-9]\d{0,14}$/.test(raw)) throw AdminError.message(400, `${name}: expected a version number`);
  return Number(raw);
}

export function configRoutes(deps: ConfigRouteDeps): void {
  const { db, resource, ctx, written } = deps;
  const withDeclarativeErrors = async <T>(f: () => Promise<T>): Promise<T> => {
    try { return await f(); } catch (err) {
      if (err instanceof DeclarativeError) throw declarativeError(err);
      throw err;
    }
  };
  const answerWrite = (c: Context, r: ReplaceResult) => {
    if (r.version === null) return c.json({ version: null, summary: r.summary, hash: deps.currentHash() ?? null }, 200);
    written(c, { version: r.version });
    return c.json({ version: r.version, summary: r.summary }, 201);
  };

  resource('/config', {
    GET: async (c) => {
      const tags = (c.req.query('select_tags') ?? '').split(',').filter(Boolean);
      return c.json({ config: fileBody(c, exportDocument(await loadState(db), tags)) });
    },
    POST: async (c) => withDeclarativeErrors(async () => {
      const parsed = await readConfigBody(c);
      const dryRun = flag(c, 'dry_run');
      const r = await importDocument(db, ctx(c), parsed.doc, { dryRun, lineOf: parsed.lineOf });
      if (dryRun) return c.json({ dry_run: true, summary: r.summary, changes: redact(planBody(r.plan)) });
      if (r.version === null && flag(c, 'check_hash')) return c.body(null, 304);
      return answerWrite(c, r);
    }),
  });
  resource('/config/versions', {
    GET: async (c) => {
      const size = parseSize(c.req.query('size'));
      const before = c.req.query('before');
      if (before !== undefined && !/^[1-9]\d{0,14}$/.test(before)) throw AdminError.message(400, 'before: expected a version number');
      const data = await listVersions(db, size, before ? Number(before) : undefined);
      const last = data.length === size ? data[data.length - 1].version : undefined;
      return c.json({ data, next: last ? `/config/versions?before=${last}&size=${size}` : null });
    },
  });
  resource('/config/versions/:version', {
    GET: async (c) => {
      const v = versionParam(c, 'version');
      const { hash, doc } = await versionDocument(db, v);
      return c.json({ version: v, hash, config: fileBody(c, doc) });
    },
  });
  resource('/config/versions/:a/diff/:b', {
    GET: async (c) => {
      const d = await diffVersions(db, versionParam(c, 'a'), versionParam(c, 'b'));
      return c.json({ ...d, changes: isViewer(c) ? redact(d.changes) : d.changes });
    },
  });
  resource('/config/rollback', {
    POST: async (c) => {
      const text = new TextDecoder().decode(await readLimited(c));
      let body: unknown;
      try { body = JSON.parse(text || '{}'); } catch { throw AdminError.message(400, 'expected a JSON body: {"version": N}'); }
      const v = (body as { version?: unknown } | null)?.version;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
        throw AdminError.of(400, 2, 'schema violation (version: expected a version number)', { fields: { version: 'expected a version number' } });
      }
      return answerWrite(c, await rollbackTo(db, ctx(c), v));
    },
  });
}
