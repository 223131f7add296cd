// Makes the secrets deploy/compose.yaml needs, once: the Ed25519 key pair snapshots are signed
// with (deploy/secrets/, private half mode 0600) and the NATS passwords of the two planes
// and the first admin's token (deploy/.env). Existing files are kept, so running it again changes nothing.
//   node deploy/keygen.mjs
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const secrets = path.join(here, 'secrets');
mkdirSync(secrets, { recursive: true, mode: 0o700 });
const priv = path.join(secrets, 'signing-key.pem');
if (!existsSync(priv)) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeFileSync(priv, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  writeFileSync(path.join(secrets, 'signing-key.pub.pem'), publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o644 });
  console.log('wrote deploy/secrets/signing-key.pem and signing-key.pub.pem');
}
const env = path.join(here, '.env');
if (!existsSync(env)) {
  const pw = () => randomBytes(24).toString('base64url');
  writeFileSync(env, `PORTICO_NATS_CP_PASSWORD=${pw()}\nPORTICO_NATS_DP_PASSWORD=${pw()}\nPORTICO_ADMIN_TOKEN=ptc_adm_${pw()}\n`, { mode: 0o600 });
  console.log('wrote deploy/.env (NATS passwords, the first admin token)');
}
