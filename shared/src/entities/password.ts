// Basic-auth password hashing: scrypt, salted (RFC 7914), encoded with its parameters so they can
// be raised later without breaking stored hashes.
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const PREFIX = '$scrypt$';
const N = 16384, R = 8, P = 1, KEYLEN = 32;

export const isPasswordHash = (v: string): boolean => v.startsWith(PREFIX);

export function hashPassword(plain: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(plain, salt, KEYLEN, { N, r: R, p: P });
  return `${PREFIX}ln=${Math.log2(N)},r=${R},p=${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Constant-time check of a password against an encoded hash; false for anything malformed. */
export function verifyPassword(plain: string, encoded: string): boolean {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(encoded);
  if (!m) return false;
  const expected = Buffer.from(m[5], 'base64');
  const actual = scryptSync(plain, Buffer.from(m[4], 'base64'), expected.length, { N: 2 ** Number(m[1]), r: Number(m[2]), p: Number(m[3]), maxmem: 256 * 1024 * 1024 });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The same check off the event loop (libuv's thread pool): what the proxy uses. */
export function verifyPasswordAsync(plain: string, encoded: string): Promise<boolean> {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(encoded);
  if (!m) return Promise.resolve(false);
  const expected = Buffer.from(m[5], 'base64');
  return new Promise((resolve) => {
    scrypt(plain, Buffer.from(m[4], 'base64'), expected.length, { N: 2 ** Number(m[1]), r: Number(m[2]), p: Number(m[3]), maxmem: 256 * 1024 * 1024 }, (err, actual) => {
      resolve(!err && actual.length === expected.length && timingSafeEqual(actual, expected));
    });
  });
}
