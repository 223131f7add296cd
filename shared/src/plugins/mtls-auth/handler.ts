// mtls-auth (Kong Enterprise's fields; free here): a client certificate that chains to one of the
// configured CAs identifies a consumer by its subject name, or, with skip_consumer_lookup, only
// authenticates a group (for acl). Kong's answers: 401 "No required TLS certificate was sent" and
// 401 "TLS certificate failed verification". Certificates are asked for only on the mTLS listener
// (PORTICO_PROXY_MTLS_LISTEN), so no browser on the main TLS port is prompted. Revocation by CRL
// (crl.ts) per revocation_check_mode, as Kong: SKIP checks nothing; IGNORE_CA_ERROR refuses a
// revoked certificate but lets one through when its status cannot be learnt; STRICT refuses both.
import { X509Certificate } from 'node:crypto';
import type { Consumer } from '../../entities/consumer.ts';
import { alreadyAuthenticated, failOrAnonymous, setConsumer } from '../auth.ts';
import type { AccessResult, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { mtlsAuth, type MtlsAuthConfig } from './schema.ts';
import { CrlChecker, type Revocation } from './crl.ts';
import { subjectDn, subjectNames, verifiedIssuer } from './verify.ts';

interface State { trusted: X509Certificate[]; byCustomId: Map<string, Consumer>; crl: CrlChecker }

const NO_CERTIFICATE = 'No required TLS certificate was sent';
const FAILED = 'TLS certificate failed verification';

function findConsumer(names: string[], by: readonly string[], env: PluginEnv, state: State): Consumer | undefined {
  for (const name of names) {
    for (const field of by) {
      const c = field === 'username' ? env.index.consumersByUsername.get(name) : state.byCustomId.get(name);
      if (c) return c;
    }
  }
  return undefined;
}

function afterRevocation(ctx: ProxyContext, leaf: X509Certificate, r: Revocation, config: MtlsAuthConfig, state: State, env: PluginEnv): AccessResult {
  if (r.status === 'revoked' || (r.status === 'unknown' && config.revocation_check_mode === 'STRICT')) {
    env.log.warn({ request_id: ctx.requestId, subject: leaf.subject, serial: leaf.serialNumber, revocation: r.status, ...(r.status === 'unknown' ? { reason: r.reason } : {}) },
      r.status === 'revoked' ? 'mtls-auth: client certificate is revoked' : 'mtls-auth: revocation status unknown (STRICT)');
    return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: FAILED });
  }
  // IGNORE_CA_ERROR with an unusable CRL: allowed; the CRL's failure was logged once when fetched.
  return identify(ctx, leaf, config, state, env);
}

/** A verified (and not revoked) certificate: the consumer it names, or the group it authenticates. */
function identify(ctx: ProxyContext, leaf: X509Certificate, config: MtlsAuthConfig, state: State, env: PluginEnv): AccessResult {
  const names = subjectNames(leaf);
  if (config.skip_consumer_lookup) {
    ctx.authenticatedGroups = [config.authenticated_group_by === 'DN' ? subjectDn(leaf) : names[0] ?? subjectDn(leaf)];
    ctx.credential = { id: null, identifier: names[0] ?? leaf.fingerprint256 };
    ctx.upstreamHeaders['x-credential-identifier'] = ctx.credential.identifier;
    return;
  }
  const consumer = findConsumer(names, config.consumer_by ?? ['username', 'custom_id'], env, state);
  if (!consumer) return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: FAILED });
  setConsumer(ctx, consumer, { id: null, identifier: names[0] ?? leaf.fingerprint256 });
}

export const mtlsAuthHandler: PluginHandler<MtlsAuthConfig, State> = {
  name: mtlsAuth.name,
  priority: mtlsAuth.priority,
  init(config, env) {
    const trusted: X509Certificate[] = [];
    for (const id of config.ca_certificates) {
      const ca = env.index.caCertificatesById?.get(id);
      if (ca) trusted.push(new X509Certificate(ca.cert));
    }
    const byCustomId = new Map<string, Consumer>();
    for (const c of env.index.consumersById.values()) if (c.custom_id) byCustomId.set(c.custom_id, c);
    return { trusted, byCustomId, crl: new CrlChecker(config.cert_cache_ttl, config.http_timeout) };
  },
  access: function mtlsAuthAccess(ctx: ProxyContext, config, state, env): AccessResult | Promise<AccessResult> {
    if (alreadyAuthenticated(ctx, config.anonymous)) return;
    const chain = ctx.clientCertificate?.() ?? null;
    if (chain === null || chain.length === 0) return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: NO_CERTIFICATE });
    const leaf = chain[0];
    const issuer = verifiedIssuer(chain, state.trusted, env.now(), config.allow_partial_chain);
    if (!issuer) {
      env.log.warn({ request_id: ctx.requestId, subject: leaf.subject }, 'mtls-auth: client certificate did not verify against the configured CAs');
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: FAILED });
    }
    if (config.revocation_check_mode === 'SKIP') return identify(ctx, leaf, config, state, env);
    const revocation = state.crl.check(leaf, issuer, env);
    return revocation instanceof Promise
      ? revocation.then(function mtlsAuthRevoked(r) { return afterRevocation(ctx, leaf, r, config, state, env); })
      : afterRevocation(ctx, leaf, revocation, config, state, env);
  },
};
