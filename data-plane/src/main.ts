// `npm run data-plane`: one DP node. Needs NATS_URL; start as many as you like.
import { createLogger, EnvError, parseEnv, runUntilSignal } from '@portico/shared';
import { startDataPlane } from './index.ts';

try {
  const env = parseEnv();
  if (!env.NATS_URL) throw new EnvError('NATS_URL is required for a data plane (it receives its config over NATS); use `npm start` for the all-in-one gateway');
  const log = createLogger(env.PORTICO_LOG_LEVEL, 'portico-dp');
  // A stray rejection in background work (bus, probes, JWKS) is logged; the node keeps serving.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  const started = startDataPlane(env, log);
  // Signals first: a SIGTERM while starting waits for the start, then drains (review C11).
  runUntilSignal(log, async () => (await started).stop());
  await started;
} catch (err) {
  if (err instanceof EnvError) { console.error(`portico: ${err.message}`); process.exit(2); }
  console.error('portico: data plane failed to start:', err);
  process.exit(1);
}
