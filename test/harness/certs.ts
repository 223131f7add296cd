// Certificates for TLS tests, made with Debian's `openssl` (no network, no npm dependency): a CA,
// leaf certificates it signs (server or client), self-signed and expired ones, RSA or ECDSA, and
// CRLs revoking some of them.
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Pem { cert: string; key: string }

export interface LeafOptions {
  /** Subject CN; also the first DNS SAN unless `sans` is given. */
  cn: string;
  /** DNS names (or `IP:1.2.3.4` entries) for subjectAltName. */
  sans?: string[];
  /** Signed by this CA; self-signed when absent. */
  ca?: Pem;
  /** Validity in days from now; 0 or less: a self-signed certificate that expired yesterday. */
  days?: number;
  keyType?: 'rsa' | 'ec';
  /** Extended key usage. */
  usage?: 'server' | 'client';
  /** Make it a CA (basicConstraints CA:TRUE). */
  isCa?: boolean;
  /** CRL distribution point URLs (crlDistributionPoints). */
  crlUrls?: string[];
}

function run(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Generate one certificate and key in a scratch directory. */
export function makeCert(opts: LeafOptions): Pem {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-cert-'));
  try {
    const keyArgs = opts.keyType === 'ec'
      ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'key.pem']
      : ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'key.pem'];
    run(dir, keyArgs);
    const sans = (opts.sans ?? [opts.cn]).map((s) => (s.startsWith('IP:') ? s : `DNS:${s}`)).join(',');
    const ext = [
      opts.isCa ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=CA:FALSE',
      opts.isCa ? 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature' : 'keyUsage=digitalSignature,keyEncipherment',
      ...(opts.isCa ? [] : [`extendedKeyUsage=${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'}`, `subjectAltName=${sans}`]),
      ...(opts.crlUrls?.length ? [`crlDistributionPoints=${opts.crlUrls.map((u) => `URI:${u}`).join(',')}`] : []),
      'subjectKeyIdentifier=hash',
    ].join('\n');
    writeFileSync(path.join(dir, 'ext.cnf'), ext + '\n');
    run(dir, ['req', '-new', '-key', 'key.pem', '-subj', `/CN=${opts.cn}`, '-out', 'req.csr']);
    const days = opts.days ?? 30;
    if (days <= 0) {
      // An expired certificate: OpenSSL 3.0's `x509` cannot backdate, `ca` can (-startdate/-enddate).
      writeFileSync(path.join(dir, 'index.txt'), '');
      writeFileSync(path.join(dir, 'ca.cnf'), [
        '[ca]', 'default_ca=d', '[d]', 'database=index.txt', 'new_certs_dir=.', 'serial=serial', 'default_md=sha256',
        'policy=p', 'copy_extensions=none', '[p]', 'commonName=supplied',
      ].join('\n') + '\n');
      writeFileSync(path.join(dir, 'serial'), '01\n');
      run(dir, ['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'key.pem', '-in', 'req.csr', '-extfile', 'ext.cnf',
        '-startdate', stamp(-2), '-enddate', stamp(-1), '-notext', '-out', 'cert.pem']);
    } else if (opts.ca) {
      writeFileSync(path.join(dir, 'ca.pem'), opts.ca.cert);
      writeFileSync(path.join(dir, 'ca.key'), opts.ca.key);
      run(dir, ['x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-extfile', 'ext.cnf', '-out', 'cert.pem', '-days', String(days)]);
    } else {
      run(dir, ['x509', '-req', '-in', 'req.csr', '-signkey', 'key.pem', '-extfile', 'ext.cnf', '-out', 'cert.pem', '-days', String(days)]);
    }
    return { cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'), key: readFileSync(path.join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A CRL (PEM) signed by `ca`, valid for a day, revoking `revoked` (certificates it need not have
 * signed: `openssl ca -revoke` records any certificate it is given).
 */
export function makeCrl(ca: Pem, revoked: Pem[] = []): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-crl-'));
  try {
    writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
    writeFileSync(path.join(dir, 'ca.key'), ca.key);
    writeFileSync(path.join(dir, 'index.txt'), '');
    writeFileSync(path.join(dir, 'crlnumber'), '01\n');
    writeFileSync(path.join(dir, 'ca.cnf'), [
      '[ca]', 'default_ca=d', '[d]', 'database=index.txt', 'crlnumber=crlnumber', 'default_md=sha256', 'default_crl_days=1',
      'certificate=ca.pem', 'private_key=ca.key',
    ].join('\n') + '\n');
    revoked.forEach((c, i) => {
      writeFileSync(path.join(dir, `r${i}.pem`), c.cert);
      run(dir, ['ca', '-batch', '-config', 'ca.cnf', '-revoke', `r${i}.pem`]);
    });
    run(dir, ['ca', '-batch', '-config', 'ca.cnf', '-gencrl', '-out', 'crl.pem']);
    return readFileSync(path.join(dir, 'crl.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `YYYYMMDDHHMMSSZ`, `days` from now. */
function stamp(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

/** A CA that can sign server and client certificates. */
export const makeCa = (cn = 'Portico Test CA', keyType: 'rsa' | 'ec' = 'ec'): Pem => makeCert({ cn, isCa: true, keyType, days: 60 });

export interface TlsReply { status: number; body: any; headers: Record<string, unknown>; alpn: string | false }

/** One HTTPS request on a new connection (no agent); the body parsed as JSON when it is JSON. */
export function tlsRequest(options: https.RequestOptions): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request({ agent: false, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* text */ }
        resolve({ status: res.statusCode!, body, headers: res.headers, alpn: (res.socket as TLSSocket).alpnProtocol ?? false });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
