// Runs a test body on each store the CP supports: a real Postgres, and the embedded one (PGlite).
import { it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../../control-plane/src/db/index.ts';
import { startPostgres } from './procs.ts';

/** Two tests, one per store, each on a migrated database of its own; `cleanups` are run by the caller's after hook. */
export function onEachStore(cleanups: (() => Promise<unknown>)[], run: (database: Database) => Promise<void>): void {
  const open = async (url?: string) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-store-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const database = await openDatabase({ url, dataDir: dir });
    cleanups.push(() => database.close());
    await run(database);
  };
  it('on Postgres', async () => {
    const pg = await startPostgres();
    cleanups.push(() => pg.stop());
    await open(pg.url);
  });
  it('on the embedded store (PGlite)', () => open());
}

/** A service row and a route row as the admin API would store them. */
export const service = (i: number) => ({
  id: randomUUID(), created_at: 1, updated_at: 1, name: `svc-${i}`, protocol: 'http', host: `s${i}.test`, port: 80,
  retries: 5, connect_timeout: 60_000, write_timeout: 60_000, read_timeout: 60_000, enabled: true,
});
export const route = (i: number, serviceId: string) => ({
  id: randomUUID(), created_at: 1, updated_at: 1, name: `r-${i}`, protocols: ['http', 'https'], paths: [`/r${i}`],
  https_redirect_status_code: 426, regex_priority: 0, strip_path: true, path_handling: 'v0', preserve_host: false,
  request_buffering: true, response_buffering: true, service_id: serviceId,
});
