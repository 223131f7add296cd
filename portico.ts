// `npm start`: CP and DP in one process. With nothing set it runs on embedded defaults: PGlite in
// the data dir and an in-process bus. With NATS_URL set, the embedded DP uses NATS like any other,
// so more DPs can join. This is the composition root, in the root package: it depends on both
// planes, so neither plane imports the other (ARCHITECTURE.md, Layout).
import { createLogger, ensureSigningKeyPair, EnvError, MemoryBus, parseEnv, runUntilSignal, trustedOf } from '@portico/shared';
import { startDataPlane } from '@portico/data-plane';
import { signingKeyFromEnv, startControlPlane } from '@portico/control-plane';

try {
  const env = parseEnv();
  const log = createLogger(env.PORTICO_LOG_LEVEL, 'portico');
  // A stray rejection in background work (bus, probes, JWKS) is logged; the node keeps serving.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  const bus = env.NATS_URL ? undefined : new MemoryBus();
  let dp: Awaited<ReturnType<typeof startDataPlane>> | null = null;
  // Snapshots are signed here too, with a key pair generated in the data dir on first start, so
  // the newcomer's two commands stay two; DPs that join over NATS trust its public half.
  let signing;
  if (env.PORTICO_SIGNING_KEY) signing = signingKeyFromEnv(env);
  else {
    const generated = ensureSigningKeyPair(env.PORTICO_DATA_DIR);
    signing = generated.signing;
    if (env.NATS_URL) log.info({ public_key: generated.publicKeyPath }, 'snapshots are signed; data planes joining over NATS need PORTICO_SIGNING_PUBLIC_KEYS set to this file');
  }
  const cp = await startControlPlane(env, log.child({ plane: 'cp' }), {
    bus: bus?.publisher, signing, upstreamHealth: (upstream) => dp?.health.get(upstream) ?? null,
  });
  dp = await startDataPlane(env, log.child({ plane: 'dp' }), bus?.subscriber, [trustedOf(signing)]);
  log.info({ admin: env.PORTICO_ADMIN_LISTEN, proxy: env.PORTICO_PROXY_LISTEN, proxy_tls: env.PORTICO_PROXY_TLS_LISTEN, status: env.PORTICO_STATUS_LISTEN, bus: bus ? 'in-process' : 'nats' }, 'portico all-in-one ready');
  const embeddedDp = dp;
  runUntilSignal(log, async () => { await embeddedDp.stop(); await cp.stop(); });
} catch (err) {
  if (err instanceof EnvError) { console.error(`portico: ${err.message}`); process.exit(2); }
  console.error('portico: failed to start:', err);
  process.exit(1);
}
