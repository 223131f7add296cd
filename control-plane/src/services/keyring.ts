// The keyring (as Kong Enterprise's): key-auth keys kept encrypted at rest with AES-256-GCM, so
// the admin API can give a key back to those allowed to see secrets (Kong's tools, decK among
// them, identify credentials by their key) while lookups still go by hash and snapshots carry only
// the hash (ARCHITECTURE.md invariant 8). The encryption key is not in the database: it comes from
// PORTICO_KEYRING_KEY / _FILE, or the all-in-one generates one in its data dir. Without one, keys
// are not kept and lists show only `key_prefix` (decK then cannot manage key-auth credentials).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EnvError, readVariableFile, writeFileAtomic, type Env } from '@portico/shared';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEYRING_FILE = 'keyring.key';

export interface Keyring {
  encrypt(plain: string): string;
  /** The plaintext, or undefined when sealed by another key or tampered with. */
  decrypt(sealed: string): string | undefined;
}

/** A 32-byte key written as base64 or hex (`openssl rand -base64 32`). */
export function parseKeyringKey(text: string, variable: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) {
    throw new EnvError(`${variable}: expected ${KEY_BYTES} bytes as base64 or hex (openssl rand -base64 32)`);
  }
  return key;
}

export function createKeyring(key: Buffer): Keyring {
  // Sealed values name their key, so a rotation can tell "another key" from "tampered".
  const keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
  return {
    encrypt(plain) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${keyId}:${Buffer.concat([iv, body]).toString('base64')}`;
    },
    decrypt(sealed) {
      const [id, data] = sealed.split(':');
      if (id !== keyId || !data) return undefined;
      const raw = Buffer.from(data, 'base64');
      if (raw.length < IV_BYTES + TAG_BYTES) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
        decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
        return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}

/** PORTICO_KEYRING_KEY or _FILE; undefined when neither is set. */
export function keyringKeyFromEnv(env: Env): Buffer | undefined {
  if (env.PORTICO_KEYRING_KEY && env.PORTICO_KEYRING_KEY_FILE) throw new EnvError('PORTICO_KEYRING_KEY and PORTICO_KEYRING_KEY_FILE are both set; set one');
  if (env.PORTICO_KEYRING_KEY) return parseKeyringKey(env.PORTICO_KEYRING_KEY, 'PORTICO_KEYRING_KEY');
  if (env.PORTICO_KEYRING_KEY_FILE) return parseKeyringKey(readVariableFile(env.PORTICO_KEYRING_KEY_FILE, 'PORTICO_KEYRING_KEY_FILE').toString('utf8'), 'PORTICO_KEYRING_KEY_FILE');
  return undefined;
}

/** The all-in-one's key: generated once in the data dir (mode 0600), like its signing key. */
export function ensureKeyringKey(dataDir: string): Buffer {
  const file = path.join(dataDir, KEYRING_FILE);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileAtomic(file, randomBytes(KEY_BYTES).toString('base64') + '\n', 0o600);
  }
  return parseKeyringKey(readFileSync(file, 'utf8'), file);
}

/** The process's keyring, set once at start (entity definitions are module constants). */
let current: Keyring | null = null;
export function useKeyring(k: Keyring | null): void { current = k; }
export function keyring(): Keyring | null { return current; }
