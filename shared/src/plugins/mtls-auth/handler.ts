// mtls-auth (Kong Enterprise's fields; free here): a client certificate that chains to one of the
// configured CAs identifies a consumer by its subject name, or, with skip_consumer_lookup, only
// authenticates a group (for acl). Kong's answers: 401 "No required TLS certificate was sent" and
// 401 "TLS certificate failed verification". Certificates are asked for only on the mTLS listener
// (PORTICO_PROXY_MTLS_LISTEN), so no browser on the main TLS port is prompted.
import { X509Certificate } from 'node:crypto';
import type { Consumer } from '../../entities/consumer.ts';
import { alreadyAuthenticated, failOrAnonymous, setConsumer } from '../auth.ts';
import type { AccessResult, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { mtlsAuth, type MtlsAuthConfig } from './schema.ts';
import { chainVerifies, subjectDn, subjectNames } from './verify.ts';

interface State { trusted: X509Certificate[]; byCustomId: Map<string, Consumer> }

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
    return { trusted, byCustomId };
  },
  access: function mtlsAuthAccess(ctx: ProxyContext, config, state, env): AccessResult {
    if (alreadyAuthenticated(ctx, config.anonymous)) return;
    const chain = ctx.clientCertificate?.() ?? null;
    if (chain === null || chain.length === 0) return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: NO_CERTIFICATE });
    const leaf = chain[0];
    if (!chainVerifies(chain, state.trusted, env.now(), config.allow_partial_chain)) {
      env.log.warn({ request_id: ctx.requestId, subject: leaf.subject }, 'mtls-auth: client certificate did not verify against the configured CAs');
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: FAILED });
    }
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
  },
};
