// The certificate a handshake gets when no SNI selects one (Kong's `ssl_cert`/`ssl_cert_key`):
// PORTICO_SSL_CERT/PORTICO_SSL_CERT_KEY (PEM text or a file), else a self-signed one generated
// once into the data dir (key owner-only) and reused, with a warning: clients will not trust it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';
import { EnvError, parseCertificate, parsePrivateKey, readVariableFile, writeFileAtomic, type Env, type Logger } from '@portico/shared';
import type { KeyPair } from './sni-index.ts';

const GENERATED_CERT = 'tls-default.crt';
const GENERATED_KEY = 'tls-default.key';
const GENERATED_DAYS = 3650;

/** A PEM value given inline, or the file a variable names. */
function pemOf(value: string, variable: string): string {
  return value.includes('-----BEGIN') ? value : readVariableFile(value, variable).toString('utf8');
}

export async function defaultCertificate(env: Env, log: Logger): Promise<KeyPair> {
  if (env.PORTICO_SSL_CERT || env.PORTICO_SSL_CERT_KEY) {
    if (!env.PORTICO_SSL_CERT || !env.PORTICO_SSL_CERT_KEY) throw new EnvError('PORTICO_SSL_CERT and PORTICO_SSL_CERT_KEY go together: set both or neither');
    const cert = pemOf(env.PORTICO_SSL_CERT, 'PORTICO_SSL_CERT');
    const key = pemOf(env.PORTICO_SSL_CERT_KEY, 'PORTICO_SSL_CERT_KEY');
    const c = parseCertificate(cert);
    const k = parsePrivateKey(key);
    if ('error' in c) throw new EnvError(`PORTICO_SSL_CERT: ${c.error}`);
    if ('error' in k) throw new EnvError(`PORTICO_SSL_CERT_KEY: ${k.error}`);
    if (!c.cert.checkPrivateKey(k.key)) throw new EnvError('PORTICO_SSL_CERT_KEY does not match PORTICO_SSL_CERT');
    return { cert, key };
  }
  const certFile = path.join(env.PORTICO_DATA_DIR, GENERATED_CERT);
  const keyFile = path.join(env.PORTICO_DATA_DIR, GENERATED_KEY);
  if (existsSync(certFile) && existsSync(keyFile)) {
    log.warn({ cert: certFile }, 'TLS: serving the generated self-signed default certificate (set PORTICO_SSL_CERT and PORTICO_SSL_CERT_KEY)');
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  }
  // RSA: the key type every TLS client accepts (the listener serves an SNI certificate's own
  // pairs only, so the default's type never competes with them).
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, notAfterDate: new Date(Date.now() + GENERATED_DAYS * 86_400_000), algorithm: 'sha256' });
  writeFileAtomic(keyFile, pems.private);
  writeFileAtomic(certFile, pems.cert, 0o644);
  log.warn({ cert: certFile }, 'TLS: no PORTICO_SSL_CERT set; generated a self-signed default certificate, which clients will not trust');
  return { cert: pems.cert, key: pems.private };
}
