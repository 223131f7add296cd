// The snapshot: the only contract between the planes (ARCHITECTURE.md invariant 1).
import { z } from 'zod';
import { routeSchema } from '../entities/route.ts';
import { serviceSchema } from '../entities/service.ts';
import { consumerSchema } from '../entities/consumer.ts';
import { targetSchema, upstreamSchema } from '../entities/upstream.ts';
import { pluginSchema } from '../entities/plugin.ts';
import { caCertificateSchema, certificateSchema, sniSchema } from '../entities/certificate.ts';
import { aclSchema, basicAuthCredentialSchema, jwtSecretSchema, keyAuthCredentialSchema } from '../entities/credentials.ts';

export const configSchema = z.strictObject({
  services: z.array(serviceSchema),
  routes: z.array(routeSchema),
  consumers: z.array(consumerSchema),
  plugins: z.array(pluginSchema),
  keyauth_credentials: z.array(keyAuthCredentialSchema),
  jwt_secrets: z.array(jwtSecretSchema),
  basicauth_credentials: z.array(basicAuthCredentialSchema),
  acls: z.array(aclSchema),
  upstreams: z.array(upstreamSchema),
  targets: z.array(targetSchema),
  // TLS: private keys travel here (signed; a DP writes its cache owner-only, ARCHITECTURE.md invariant 8).
  certificates: z.array(certificateSchema),
  snis: z.array(sniSchema),
  ca_certificates: z.array(caCertificateSchema),
});
export type Config = z.infer<typeof configSchema>;

export const snapshotSchema = z.strictObject({
  /** Strictly increasing, from Postgres. */
  version: z.int().positive(),
  /** sha256 (hex) of the canonical serialization of `config`. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** When the CP built it, ms since the epoch. */
  built_at: z.int().nonnegative(),
  config: configSchema,
});
export type Snapshot = z.infer<typeof snapshotSchema>;

/** A config with every entity list empty. */
export function emptyConfig(): Config {
  return { services: [], routes: [], consumers: [], plugins: [], keyauth_credentials: [], jwt_secrets: [], basicauth_credentials: [], acls: [], upstreams: [], targets: [], certificates: [], snis: [], ca_certificates: [] };
}
