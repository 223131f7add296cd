#!/usr/bin/env -S node --import=tsx
// The `portico` command, the composition root in the root package: it depends on both planes, so
// neither plane imports the other (ARCHITECTURE.md, Layout).
//   portico | portico start   CP and DP in one process (`npm start` runs this).
//   portico config …          the declarative config CLI (control-plane/src/cli/config.ts).
// `npx portico …` runs this file from the repository root (npm runs the root package's own bin;
// tsx, a dev dependency, compiles it on the fly); `npm start` runs the bundle of it.
import { Command, CommanderError } from 'commander';
import { PORTICO_VERSION } from '@portico/shared';
import { buildConfigCommand, EXIT } from '@portico/control-plane/cli';

/**
 * All-in-one. With nothing set it runs on embedded defaults: PGlite in the data dir and an
 * in-process bus. With NATS_URL set, the embedded DP uses NATS like any other, so more DPs can join.
 */
async function startAllInOne(): Promise<void> {
  const { createLogger, ensureSigningKeyPair, EnvError, MemoryBus, parseEnv, runUntilSignal, startMallocTrim, trustedOf } = await import('@portico/shared');
  const { startDataPlane } = await import('@portico/data-plane');
  const { ensureKeyringKey, signingKeyFromEnv, startControlPlane } = await import('@portico/control-plane');
  try {
    const env = parseEnv();
    const log = createLogger(env.PORTICO_LOG_LEVEL, 'portico');
    // A stray rejection in background work (bus, probes, JWKS) is logged; the node keeps serving.
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
    // The embedded DP shares this process with the CP and its in-process bus and database: one process.
    if (process.env.PORTICO_WORKERS && env.PORTICO_WORKERS > 1) log.warn({ PORTICO_WORKERS: env.PORTICO_WORKERS }, 'PORTICO_WORKERS applies to `npm run data-plane`; the all-in-one runs one process');
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
      // Key-auth keys are sealed with a key from the environment, else one generated beside the signing key.
      keyringKey: env.PORTICO_KEYRING_KEY || env.PORTICO_KEYRING_KEY_FILE ? undefined : ensureKeyringKey(env.PORTICO_DATA_DIR),
      // Portico Manager charts the embedded DP's traffic from its status listener.
      trafficSources: [`http://${env.PORTICO_STATUS_LISTEN.host === '0.0.0.0' ? '127.0.0.1' : env.PORTICO_STATUS_LISTEN.host}:${env.PORTICO_STATUS_LISTEN.port}/metrics`],
    });
    dp = await startDataPlane(env, log.child({ plane: 'dp' }), bus?.subscriber, [trustedOf(signing)]);
    log.info({ admin: env.PORTICO_ADMIN_LISTEN, proxy: env.PORTICO_PROXY_LISTEN, proxy_tls: env.PORTICO_PROXY_TLS_LISTEN, status: env.PORTICO_STATUS_LISTEN, bus: bus ? 'in-process' : 'nats' }, 'portico all-in-one ready');
    // What start freed goes back to the system, and what later bursts free (large bodies, config writes).
    const trim = startMallocTrim(log);
    const embeddedDp = dp;
    runUntilSignal(log, async () => { trim.stop(); await embeddedDp.stop(); await cp.stop(); });
  } catch (err) {
    if (err instanceof EnvError) { console.error(`portico: ${err.message}`); process.exit(2); }
    console.error('portico: failed to start:', err);
    process.exit(1);
  }
}

const program = new Command('portico')
  .description('Portico: a Kong-compatible API gateway')
  .version(PORTICO_VERSION)
  .exitOverride();
program.command('start', { isDefault: true }).description('run the control plane and a data plane in one process (the default)')
  .action(startAllInOne);
program.addCommand(buildConfigCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // --help and --version are not errors; a usage error is (exit 2, as every config failure).
  process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? EXIT.OK : EXIT.ERROR;
}
