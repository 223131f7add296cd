// How both planes connect to NATS, authenticated (ARCHITECTURE.md invariant 9): user and password
// or a token in NATS_URL (`nats://user:pass@host:4222`, `nats://token@host:4222`), a creds file or
// an nkey seed file in PORTICO_NATS_CREDS, and TLS for `tls://` URLs, checked against
// PORTICO_NATS_TLS_CA when given (else the system store). Everything is read and checked before a
// socket opens; a bad value is an EnvError naming the variable.
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from '@nats-io/nats-core';
import { EnvError, readVariableFile, type Env } from '../env.ts';

export type NatsOptions = ConnectionOptions;

/** Servers without their credentials, plus the credentials (which must agree across a list). */
function splitCredentials(url: string): { servers: string[]; user?: string; pass?: string; token?: string; tls: boolean } {
  const servers: string[] = [];
  let user: string | undefined; let pass: string | undefined; let token: string | undefined;
  let tls = false;
  for (const raw of url.split(',').map((s) => s.trim()).filter(Boolean)) {
    const u = new URL(raw);
    if (u.protocol === 'tls:') tls = true;
    if (u.username || u.password) {
      const name = decodeURIComponent(u.username);
      const secret = decodeURIComponent(u.password);
      if (u.password) { user = name; pass = secret; } else token = name;
      u.username = ''; u.password = '';
    }
    servers.push(u.toString().replace(/\/$/, ''));
  }
  return { servers, user, pass, token, tls };
}


/** Connection options both planes use: reconnect forever, and start even while NATS is down. */
export function natsConnectOptions(env: Pick<Env, 'NATS_URL' | 'PORTICO_NATS_CREDS' | 'PORTICO_NATS_TLS_CA'>, name: string): NatsOptions {
  if (!env.NATS_URL) throw new EnvError('NATS_URL is required');
  const { servers, user, pass, token, tls } = splitCredentials(env.NATS_URL);
  const opts: NatsOptions = { servers, name, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true };
  if (user !== undefined) { opts.user = user; opts.pass = pass; }
  if (token !== undefined) opts.token = token;
  if (env.PORTICO_NATS_CREDS) {
    const bytes = readVariableFile(env.PORTICO_NATS_CREDS, 'PORTICO_NATS_CREDS');
    const text = Buffer.from(bytes).toString('utf8');
    if (text.includes('BEGIN NATS USER JWT')) opts.authenticator = credsAuthenticator(bytes);
    else {
      const seed = /\bSU[A-Z2-7]{50,}\b/.exec(text)?.[0];
      if (!seed) throw new EnvError(`PORTICO_NATS_CREDS: '${env.PORTICO_NATS_CREDS}' holds neither a NATS creds file nor a user nkey seed (SU…)`);
      opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
    }
  }
  if (tls || env.PORTICO_NATS_TLS_CA) {
    opts.tls = env.PORTICO_NATS_TLS_CA ? { ca: Buffer.from(readVariableFile(env.PORTICO_NATS_TLS_CA, 'PORTICO_NATS_TLS_CA')).toString('utf8') } : {};
  }
  return opts;
}
