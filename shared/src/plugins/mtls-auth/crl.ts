// Revocation checking by CRL (RFC 5280 §6.3) for mtls-auth's revocation_check_mode. The leaf's
// CRL distribution point URLs (http only) are read from the certificate, the CRL is fetched through
// the DP's HTTP port (env.getBytes: shared/ opens no sockets), its signature is verified against the
// certificate that issued the leaf, and the leaf's serial looked up. A CRL is cached per plugin
// instance by issuer and URL for cert_cache_ttl ms or until its nextUpdate, whichever is sooner; a
// failure is cached briefly so an unreachable server costs one timeout, not one per request.
// Parsing is @peculiar/x509 (node:crypto has no CRL parser). OCSP is not implemented.
import type { X509Certificate as NodeCertificate } from 'node:crypto';
// @peculiar/x509 2.x resolves its crypto provider through tsyringe, which needs the Reflect
// metadata polyfill loaded first (1.x loaded it itself).
import 'reflect-metadata';
import { CRLDistributionPointsExtension, X509Certificate, X509Crl } from '@peculiar/x509';
import { LRUCache } from 'lru-cache';
import type { PluginEnv } from '../types.ts';

/** Largest CRL read; a longer answer is an error. */
export const MAX_CRL_BYTES = 8 * 1024 * 1024;
/** How long a failed fetch (unreachable, bad CRL, bad signature) is remembered before a retry. */
const FAILURE_TTL_MS = 5_000;
/** Distinct leaf certificates (their serial and URLs) and CRLs remembered per plugin instance. */
const MAX_CERTS = 10_000;
const MAX_CRLS = 100;

export type Revocation = { status: 'good' } | { status: 'revoked' } | { status: 'unknown'; reason: string };

interface LeafInfo { serial: string; urls: string[] }
interface LoadedCrl { revoked: Set<string>; nextUpdate: number | null }
interface CrlEntry { expiresAt: number; value: LoadedCrl | Error | Promise<LoadedCrl | Error> }

const GOOD: Revocation = { status: 'good' };
const REVOKED: Revocation = { status: 'revoked' };

/** Serial numbers as lower-case hex without leading zeros (node:crypto and @peculiar/x509 spell them differently). */
const normalizeSerial = (hex: string): string => hex.toLowerCase().replace(/^0+(?=.)/, '');

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The leaf's serial and its http CRL distribution point URLs. */
function leafInfo(leaf: NodeCertificate): LeafInfo {
  const ext = new X509Certificate(leaf.raw).getExtension(CRLDistributionPointsExtension);
  const urls: string[] = [];
  for (const dp of ext?.distributionPoints ?? []) {
    for (const name of dp.distributionPoint?.fullName ?? []) {
      const uri = name.uniformResourceIdentifier;
      if (uri && /^http:\/\//i.test(uri)) urls.push(uri);
    }
  }
  return { serial: normalizeSerial(leaf.serialNumber), urls };
}

/** Fetches, parses and verifies one CRL; an Error (never a rejection) when it cannot be used. */
async function loadCrl(url: string, issuer: NodeCertificate, env: PluginEnv, timeoutMs: number): Promise<LoadedCrl | Error> {
  if (!env.getBytes) return new Error('no HTTP port to fetch CRLs');
  try {
    const bytes = await env.getBytes(url, timeoutMs, MAX_CRL_BYTES);
    const crl = bytes.subarray(0, 10).toString('latin1') === '-----BEGIN' ? new X509Crl(bytes.toString('latin1')) : new X509Crl(new Uint8Array(bytes));
    const ca = new X509Certificate(issuer.raw);
    if (crl.issuer !== ca.subject) return new Error(`CRL issuer "${crl.issuer}" is not the certificate's issuer "${ca.subject}"`);
    if (!(await crl.verify({ publicKey: ca }))) return new Error('CRL signature does not verify against the issuing CA');
    // Delta, indirect and partitioned CRLs (RFC 5280 §5.2) are not processed: a critical extension makes the CRL unusable.
    const critical = crl.extensions.find((e) => e.critical);
    if (critical) return new Error(`CRL has a critical extension ${critical.type} that is not processed`);
    const now = env.now();
    if (crl.thisUpdate.getTime() > now) return new Error('CRL is not yet valid (thisUpdate in the future)');
    if (crl.nextUpdate && crl.nextUpdate.getTime() < now) return new Error('CRL is out of date (nextUpdate passed)');
    return { revoked: new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber))), nextUpdate: crl.nextUpdate?.getTime() ?? null };
  } catch (e) {
    return new Error(`CRL ${url}: ${message(e)}`);
  }
}

/** One plugin instance's revocation checker and its caches (built once per snapshot). */
export class CrlChecker {
  private readonly leaves = new LRUCache<string, LeafInfo>({ max: MAX_CERTS });
  private readonly crls = new LRUCache<string, CrlEntry>({ max: MAX_CRLS });

  constructor(private readonly ttlMs: number, private readonly timeoutMs: number) {}

  /** The leaf's revocation status: synchronous when its CRL is cached, else a promise (never rejects). */
  check(leaf: NodeCertificate, issuer: NodeCertificate, env: PluginEnv): Revocation | Promise<Revocation> {
    let info = this.leaves.get(leaf.fingerprint256);
    if (!info) {
      try {
        info = leafInfo(leaf);
      } catch (e) {
        return { status: 'unknown', reason: `unreadable certificate extensions: ${message(e)}` };
      }
      this.leaves.set(leaf.fingerprint256, info);
    }
    if (info.urls.length === 0) return { status: 'unknown', reason: 'the certificate names no http CRL distribution point' };
    return this.checkFrom(info, 0, issuer, env, null);
  }

  /** Tries the distribution points in order: the first usable CRL decides (RFC 5280 §6.3.3). */
  private checkFrom(info: LeafInfo, i: number, issuer: NodeCertificate, env: PluginEnv, lastError: Error | null): Revocation | Promise<Revocation> {
    if (i >= info.urls.length) return { status: 'unknown', reason: lastError?.message ?? 'no CRL' };
    const crl = this.crl(info.urls[i], issuer, env);
    const decide = (c: LoadedCrl | Error): Revocation | Promise<Revocation> =>
      c instanceof Error ? this.checkFrom(info, i + 1, issuer, env, c) : c.revoked.has(info.serial) ? REVOKED : GOOD;
    return crl instanceof Promise ? crl.then(decide) : decide(crl);
  }

  /** The cached CRL of `url` for this issuer, or one fetch shared by every request that asks meanwhile. */
  private crl(url: string, issuer: NodeCertificate, env: PluginEnv): LoadedCrl | Error | Promise<LoadedCrl | Error> {
    const key = `${issuer.fingerprint256} ${url}`;
    const hit = this.crls.get(key);
    if (hit && (hit.value instanceof Promise || hit.expiresAt > env.now())) return hit.value;
    const pending = loadCrl(url, issuer, env, this.timeoutMs).then((value) => {
      const now = env.now();
      let expiresAt = now + (value instanceof Error ? Math.min(this.ttlMs, FAILURE_TTL_MS) : this.ttlMs);
      if (value instanceof Error) env.log.warn({ url, error: value.message }, 'mtls-auth: CRL unavailable');
      else if (value.nextUpdate !== null) expiresAt = Math.min(expiresAt, value.nextUpdate);
      this.crls.set(key, { expiresAt, value });
      return value;
    });
    this.crls.set(key, { expiresAt: Infinity, value: pending });
    return pending;
  }
}
