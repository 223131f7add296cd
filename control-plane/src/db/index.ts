// Opens the CP's database: Postgres when DATABASE_URL is set, else embedded PGlite in the data dir.
// Migrations run at start under a Postgres advisory lock, so several CPs may start at once.
import { existsSync, mkdirSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import * as schema from './schema.ts';

export type Db = PgDatabase<any, typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type Executor = Db | Tx;

/** Rows of a raw query's result (node-postgres and PGlite both answer `{ rows }`). */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** The repo's migrations/ folder, found upwards from this module (source or bundle in dist/). */
function findMigrations(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'migrations');
    if (existsSync(path.join(candidate, 'meta', '_journal.json'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('migrations/ folder not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}
const MIGRATIONS_DIR = findMigrations();
/** Arbitrary constant naming Portico's migration lock. */
const MIGRATION_LOCK_KEY = 0x706f7274;

/**
 * The embedded database's memory, bounded for a gateway's config store (thousands of rows, one
 * writer): Postgres's defaults (128 MB of shared_buffers, 4 MB work_mem, 64 MB
 * maintenance_work_mem) are sized for a server, and in PGlite's WebAssembly memory every page
 * they touch stays resident. Measured (a reopened data dir, idle): 312 MB RSS with the defaults,
 * 183 MB with these. Passed as command-line settings, which override the data dir's
 * postgresql.conf and reach the initdb run of a first start too.
 */
const PGLITE_MEMORY_SETTINGS = ['-c', 'shared_buffers=16MB', '-c', 'work_mem=1MB', '-c', 'maintenance_work_mem=8MB', '-c', 'temp_buffers=1MB'];

/**
 * The embedded database's WebAssembly runs on V8's baseline compiler (Liftoff) alone. Its
 * optimizing tier (TurboFan) recompiles the functions a start runs hot, which here is most of
 * Postgres's catalog code: ~90 MB of compile memory, which glibc then keeps, and CPU that start
 * shares with everything else. A config store's queries gain nothing from it that shows: measured
 * on the all-in-one over 3 starts each (2026-12-01, both with malloc_trim), idle RSS 158–193 MB
 * against 203–230 MB, a first start 6.4–6.7 s against 7.8–8.3 s, a restart 1.9 s against
 * 2.2–2.4 s, an admin write's median 12–16 ms against 13–18 ms, and the proxy's throughput within
 * run-to-run noise (its one other WebAssembly user is undici's HTTP parser). V8 reads the flag
 * when it compiles a module, so it is set before PGlite's is.
 */
const WASM_FLAG = '--liftoff-only';

/**
 * A first start creates the database (PGlite's initdb) and its tables in a child process: initdb
 * runs in a second WebAssembly instance, and creating the schema grows the database's memory,
 * which neither WebAssembly nor the allocator gives back (a worker thread's exit returned only
 * part of it). Measured on a first start, idle: ~365 MB RSS in-process (755 MB until a full GC);
 * this way, what any later start uses.
 */
async function createPglite(dir: string, startParams: string[]): Promise<void> {
  const url = (m: string) => JSON.stringify(import.meta.resolve(m));
  const script = `const [{ PGlite }, { drizzle }, { migrate }] = await Promise.all([import(${url('@electric-sql/pglite')}), import(${url('drizzle-orm/pglite')}), import(${url('drizzle-orm/pglite/migrator')})]);
    const { dir, startParams, migrationsFolder } = JSON.parse(process.argv[1]);
    const db = new PGlite(dir, { startParams });
    await migrate(drizzle(db), { migrationsFolder });
    await db.close();`;
  const args = JSON.stringify({ dir, startParams, migrationsFolder: MIGRATIONS_DIR });
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [WASM_FLAG, '--input-type=module', '-e', script, args], { maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`creating the embedded database in ${dir} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

export async function openDatabase(opts: { url?: string; dataDir: string }): Promise<Database> {
  if (opts.url) {
    const { default: pg } = await import('pg');
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const { migrate } = await import('drizzle-orm/node-postgres/migrator');
    const pool = new pg.Pool({ connectionString: opts.url, max: 10, connectionTimeoutMillis: 5_000 });
    pool.on('error', () => { /* idle client errors surface on the next query */ });
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      try {
        await migrate(drizzle(client, { schema }), { migrationsFolder: MIGRATIONS_DIR });
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      }
    } finally {
      client.release();
    }
    const db = drizzle(pool, { schema }) as unknown as Db;
    return {
      db,
      kind: 'postgres',
      ping: async () => { try { await pool.query('SELECT 1'); return true; } catch { return false; } },
      close: () => pool.end(),
    };
  }
  setFlagsFromString(WASM_FLAG);
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  const dir = path.join(opts.dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  const startParams = [...PGlite.defaultStartParams, ...PGLITE_MEMORY_SETTINGS];
  if (!existsSync(path.join(dir, 'PG_VERSION'))) await createPglite(dir, startParams);
  const client = new PGlite(dir, { startParams });
  const pdb = drizzle(client, { schema });
  await migrate(pdb, { migrationsFolder: MIGRATIONS_DIR });
  return {
    db: pdb as unknown as Db,
    kind: 'pglite',
    ping: async () => { try { await pdb.execute(sql`SELECT 1`); return true; } catch { return false; } },
    close: () => client.close(),
  };
}
