// Basic-auth password hashing: scrypt, salted (RFC 7914), encoded with its parameters so they can
// be raised later without breaking stored hashes.
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const PREFIX = '$scrypt$';
const N = 16384, R = 8, P = 1, KEYLEN = 32;

export const isPasswordHash = (v: string): boolean => v.startsWith(PREFIX);

const encode = (salt: Buffer, hash: Buffer) => `${PREFIX}ln=${Math.log2(N)},r=${R},p=${P}$${salt.toString('base64')}$${hash.toString('base64')}`;

/**
 * A hash no password matches (random salt and digest), with the current parameters. Checking an
 * unknown username against it costs what a wrong password costs, so timing reveals no usernames.
 */
export const DUMMY_PASSWORD_HASH = encode(randomBytes(16), randomBytes(KEYLEN));

export function hashPassword(plain: string): string {
  const salt = randomBytes(16);
  return encode(salt, scryptSync(plain, salt, KEYLEN, { N, r: R, p: P }));
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

/**
 * Caps scrypt checks in flight. scrypt runs on libuv's thread pool (4 threads unless
 * UV_THREADPOOL_SIZE says otherwise), which dns.lookup (upstream connects) and fs share; an
 * unauthenticated flood of guesses must not take all of it. At most `maxInFlight` checks run,
 * `maxQueued` more wait in order, and any beyond that are refused at once (the caller answers 503).
 */
export class PasswordGate {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly maxInFlight: number, readonly maxQueued: number) {}

  /** Checks running now and waiting. */
  get load(): { inFlight: number; queued: number } { return { inFlight: this.inFlight, queued: this.waiting.length }; }

  /** The check, or null when the gate is full. */
  verify(plain: string, encoded: string): Promise<boolean> | null {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      return this.run(plain, encoded);
    }
    if (this.waiting.length >= this.maxQueued) return null;
    return new Promise<void>((resolve) => { this.waiting.push(resolve); }).then(() => this.run(plain, encoded));
  }

  /** Runs holding a slot; when done, the slot passes straight to the next waiter. */
  private run(plain: string, encoded: string): Promise<boolean> {
    return verifyPasswordAsync(plain, encoded).finally(() => {
      const next = this.waiting.shift();
      if (next) next(); else this.inFlight--;
    });
  }
}

/** Half the thread pool at most, so other users of the pool always find a thread. */
const POOL_THREADS = Number(process.env.UV_THREADPOOL_SIZE) || 4;
/** About 0.75 s of waiting at ~45 ms per check on two threads; a longer queue only delays the refusal. */
export const PASSWORD_GATE = new PasswordGate(Math.max(1, Math.floor(POOL_THREADS / 2)), 32);
