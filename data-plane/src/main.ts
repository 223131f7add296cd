// `npm run data-plane`: one DP node. Needs NATS_URL; start as many as you like. With
// PORTICO_WORKERS > 1 (default: one per core) this process is the node's primary and forks the
// workers that proxy (cluster/); with 1 it is the whole node.
import cluster from 'node:cluster';
import { createLogger, EnvError, parseEnv, runUntilSignal } from '@portico/shared';
import { startDataPlane } from './index.ts';
import { startPrimary } from './cluster/primary.ts';
import { startWorker } from './cluster/worker.ts';

try {
  const env = parseEnv();
  if (!env.NATS_URL) throw new EnvError('NATS_URL is required for a data plane (it receives its config over NATS); use `npm start` for the all-in-one gateway');
  const role = cluster.isWorker ? `worker ${cluster.worker!.id}` : env.PORTICO_WORKERS > 1 ? 'primary' : null;
  const log = createLogger(env.PORTICO_LOG_LEVEL, 'portico-dp').child(role ? { process: role } : {});
  // A stray rejection in background work (bus, probes, JWKS) is logged; the node keeps serving.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  const started = cluster.isWorker ? startWorker(env, log) : env.PORTICO_WORKERS > 1 ? startPrimary(env, log) : startDataPlane(env, log);
  // Signals first: a SIGTERM while starting waits for the start, then drains (review C11).
  runUntilSignal(log, async () => (await started).stop());
  await started;
} catch (err) {
  if (err instanceof EnvError) { console.error(`portico: ${err.message}`); process.exit(2); }
  console.error('portico: data plane failed to start:', err);
  process.exit(1);
}
