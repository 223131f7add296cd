// mtls-auth: Kong Enterprise's client-certificate authentication, free, with its field names
// (reference/edge-design.md §7). Revocation is checked by CRL (crl.ts); OCSP is not implemented.
import { z } from 'zod';
import { bool, int, oneOf, opt, set, text, uuid } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';
import { EXAMPLE_UUID } from '../../entities/certificate-example.ts';

export const mtlsAuthConfig = z.strictObject({
  ca_certificates: set(uuid()).min(1, 'length must be at least 1').meta({ example: [EXAMPLE_UUID] }).describe('ca_certificates ids a client certificate must chain to'),
  skip_consumer_lookup: bool().default(false).describe('Accept any verified certificate without mapping it to a consumer (groups from authenticated_group_by)'),
  consumer_by: opt(set(oneOf(['username', 'custom_id'])).min(1, 'length must be at least 1')).default(['username', 'custom_id'])
    .describe('Consumer fields the certificate\'s subject name (CN, then SAN names) is matched against'),
  authenticated_group_by: opt(oneOf(['CN', 'DN'])).default('CN').describe('Certificate property used as the authenticated group when skip_consumer_lookup is on'),
  anonymous: opt(text()).describe('Consumer (id or username) to use when authentication fails'),
  revocation_check_mode: oneOf(['SKIP', 'IGNORE_CA_ERROR', 'STRICT']).default('IGNORE_CA_ERROR')
    .describe('Revocation check by the certificate\'s http CRL distribution points (no OCSP): SKIP none; IGNORE_CA_ERROR refuses a revoked certificate but allows one whose CRL cannot be fetched or verified; STRICT also refuses those and certificates naming no CRL'),
  allow_partial_chain: bool().default(false).describe('Accept a chain that ends at a listed intermediate (not self-signed) CA'),
  send_ca_dn: bool().default(false).describe('Kong: send the CA names in the handshake (Portico requests a certificate on its mTLS listener without a CA list)'),
  cache_ttl: z.number().min(0).default(60).describe('Kong: consumer cache TTL, seconds (Portico looks consumers up in the applied config)'),
  cert_cache_ttl: z.number().min(0).default(60000).describe('How long a fetched CRL is cached, ms (at most until its nextUpdate)'),
  http_timeout: int(0, 2 ** 31 - 1).default(30000).describe('CRL request timeout, ms'),
});
export type MtlsAuthConfig = z.infer<typeof mtlsAuthConfig>;

export const mtlsAuth: PluginDefinition = { name: 'mtls-auth', priority: 1600, configSchema: mtlsAuthConfig, noConsumerScope: true };
