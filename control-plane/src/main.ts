// `npm run control-plane`: the CP alone. Needs NATS_URL; DATABASE_URL unset means embedded PGlite.
import { createLogger, EnvError, parseEnv, runUntilSignal } from '@portico/shared';
import { startControlPlane } from './index.ts';
import { lowerPriority } from './priority.ts';

try {
  const env = parseEnv();
  if (!env.NATS_URL) throw new EnvError('NATS_URL is required when the control plane runs alone (data planes reach it over NATS); use `npm start` for the all-in-one gateway');
  const log = createLogger(env.PORTICO_LOG_LEVEL, 'portico-cp');
  // A stray rejection in background work (bus, probes, JWKS) is logged; the node keeps serving.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  const niced = lowerPriority(env.PORTICO_CP_NICE);
  if (niced.error) log.warn({ nice: env.PORTICO_CP_NICE, threads_set: niced.threads, err: niced.error }, 'could not lower the priority of every control-plane thread');
  const started = startControlPlane(env, log);
  runUntilSignal(log, async () => (await started).stop());
  await started;
} catch (err) {
  if (err instanceof EnvError) { console.error(`portico: ${err.message}`); process.exit(2); }
  console.error('portico: control plane failed to start:', err);
  process.exit(1);
}
