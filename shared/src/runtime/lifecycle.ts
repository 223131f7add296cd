// Process plumbing every role shares: the logger, a persisted node id, and graceful shutdown.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { UUID_RE } from '../entities/fields.ts';

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
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, file);
}

/** Stop accepting, let in-flight requests finish within `timeoutMs`, then force-close. */
export function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => { server.closeAllConnections(); resolve(); }, timeoutMs);
    force.unref();
    server.close(() => { clearTimeout(force); resolve(); });
    server.closeIdleConnections();
  });
}
