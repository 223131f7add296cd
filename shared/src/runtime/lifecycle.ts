// Process plumbing every role shares: the logger, a persisted node id, and graceful shutdown.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { UUID_RE } from '../entities/fields.ts';
import type { Logger } from './logger.ts';

/** A node id kept in the data dir, so a restarted node keeps its identity (as Kong). */
export function loadNodeId(dataDir: string, file = 'node_id'): string {
  const p = path.join(dataDir, file);
  try {
    const id = readFileSync(p, 'utf8').trim();
    if (UUID_RE.test(id)) return id;
  } catch { /* first start */ }
  const id = randomUUID();
  mkdirSync(dataDir, { recursive: true });
  writeFileAtomic(p, id + '\n');
  return id;
}

/**
 * Write to a temp file and rename over the target: readers see the old or the new file, never half.
 * Owner-only by default: what the data dir holds (cached snapshots, keys) is nobody else's business.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = tempPathFor(file);
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, file);
}

/** writeFileAtomic on libuv's threadpool, for a serving process (the DP's disk cache); the temp file is removed if the write fails. */
export async function writeFileAtomicAsync(file: string, data: Uint8Array, mode = 0o600): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    await writeFile(tmp, data, { mode });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

const tempPathFor = (file: string) => `${file}.${process.pid}.${Date.now()}.tmp`;

/** Stop accepting, let in-flight requests finish within `timeoutMs`, then force-close. */
export function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => { server.closeAllConnections(); resolve(); }, timeoutMs);
    force.unref();
    server.close(() => { clearTimeout(force); resolve(); });
    server.closeIdleConnections();
  });
}

/**
 * On SIGTERM/SIGINT: stop gracefully (bounded by each server's own timeout), then exit 0. Install it
 * before anything that can wait (a node starting while NATS is down must still drain and exit);
 * `stop` then waits for the start to finish first.
 */
export function runUntilSignal(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining and shutting down');
    stop().then(() => process.exit(0), (err) => { log.error({ err }, 'shutdown failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
