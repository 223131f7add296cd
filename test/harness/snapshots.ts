// Snapshots for tests of how they travel (parts, deltas, pushes).
import { generateKeyPairSync } from 'node:crypto';
import { canonicalConfig, emptyConfig, parseSigningKey, signSnapshot, SnapshotWriter, trustedOf, type Config, type TrustedKey } from '@portico/shared';

/**
 * Signed snapshots of 2,000 routes, one route edited per version, from one writer (as the CP's);
 * `trusted`: the key list that opens them.
 */
export function snapshotSeries(routes = 2_000): ((version: number) => { envelope: Buffer; parts: Uint8Array[] }) & { trusted: TrustedKey[] } {
  const writer = new SnapshotWriter();
  const key = parseSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  const ids = Array.from({ length: routes }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  const at = (version: number) => {
    const config = { ...emptyConfig(), routes: ids.map((id, i) => ({ id, name: `r-${i}`, paths: [i === (version * 397) % routes ? `/edited-${version}` : `/r${i}`] })) } as unknown as Config;
    const sealed = writer.seal({ version, built_at: version }, config, canonicalConfig(config).texts);
    return { envelope: Buffer.from(signSnapshot(sealed.bytes, key)), parts: sealed.parts };
  };
  return Object.assign(at, { trusted: [trustedOf(key)] });
}
