// The runtime contract's environment variables (ARCHITECTURE.md), parsed once at start. A bad value
// stops the process with a message naming the variable; nothing is opened before this succeeds.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { HTTP_TOKEN } from './entities/fields.ts';
import { IpMatcher } from './net/matcher.ts';

export interface Listen { host: string; port: number }

export function parseListen(value: string): Listen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new Error(`expected host:port, got '${value}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range (0-65535)`);
  return { host: m[1] ?? m[2], port };
}

const listen = (def: string) => z.string().default(def).transform((v, ctx) => {
  try { return parseListen(v); } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const url = (protocols: string[]) => z.string().optional().transform((v, ctx) => {
  if (v === undefined || v === '') return undefined;
  for (const part of v.split(',')) {
    let u: URL;
    try { u = new URL(part.trim()); } catch {
      ctx.addIssue({ code: 'custom', message: `'${part}' is not a URL` });
      return z.NEVER;
    }
    if (!protocols.includes(u.protocol.replace(/:$/, ''))) {
      ctx.addIssue({ code: 'custom', message: `expected a ${protocols.join(' or ')} URL, got '${u.protocol}'` });
      return z.NEVER;
    }
  }
  return v;
});

/** A listen address, or `off` (null): for listeners an operator may do without. */
const listenOrOff = (def: string) => z.string().default(def).transform((v, ctx) => {
  if (v.trim() === 'off') return null;
  try { return parseListen(v); } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message}, or off` });
    return z.NEVER;
  }
});

const ms = (def: number) => z.string().default(String(def)).transform((v, ctx) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) { ctx.addIssue({ code: 'custom', message: `expected a whole number of milliseconds, got '${v}'` }); return z.NEVER; }
  return n;
});

/** Most worker processes one DP node runs: far above any core count, low enough to catch a typo. */
export const MAX_WORKERS = 1024;

/**
 * A whole number from `min` to `max` written as digits (no sign, point, exponent or hex), spaces or
 * tabs around allowed (not CR, LF or other controls); `unset` when the variable is. `what` and
 * `note` make the error.
 */
const wholeNumber = (what: string, min: number, max: number, unset: () => number, note = '') => z.string().optional().transform((v, ctx) => {
  if (v === undefined) return unset();
  const n = /^[ \t]*\d{1,9}[ \t]*$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) {
    ctx.addIssue({ code: 'custom', message: `expected ${what} from ${min} to ${max}${note}, got '${v.length > 40 ? v.slice(0, 40) + '…' : v}'` });
    return z.NEVER;
  }
  return n;
});

/** `PORTICO_WORKERS`: a whole number of processes; unset, one per core the OS gives this process. */
const workers = wholeNumber('a whole number of worker processes', 1, MAX_WORKERS, availableParallelism, ' (1: a single process)');

/** Kong's trusted_ips: comma-separated addresses and CIDRs (`0.0.0.0/0,::/0` trusts every peer). */
const trustedIps = z.string().default('').transform((v, ctx) => {
  try {
    return new IpMatcher(v.split(',').map((x) => x.trim()).filter((x) => x !== ''));
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message} (expected comma-separated IP addresses or CIDRs, e.g. 10.0.0.0/8,::1)` });
    return z.NEVER;
  }
});

/** Kong's real_ip_header, lower-cased as Node keys request headers. */
const realIpHeader = z.string().default('X-Real-IP').transform((v, ctx) => {
  const name = v.trim();
  if (name.toLowerCase() === 'proxy_protocol') {
    ctx.addIssue({ code: 'custom', message: "'proxy_protocol' is not supported: Portico does not read the PROXY protocol; name the header your load balancer sets (e.g. X-Forwarded-For)" });
    return z.NEVER;
  }
  if (!HTTP_TOKEN.test(name)) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a header name` });
    return z.NEVER;
  }
  return name.toLowerCase();
});

const onOff = (def: 'on' | 'off') => z.enum(['on', 'off']).default(def).transform((v) => v === 'on');

export const envSchema = z.object({
  DATABASE_URL: url(['postgres', 'postgresql']),
  NATS_URL: url(['nats', 'tls', 'ws', 'wss']),
  REDIS_URL: url(['redis', 'rediss']),
  PORTICO_ADMIN_LISTEN: listen('127.0.0.1:8001'),
  PORTICO_PROXY_LISTEN: listen('0.0.0.0:8000'),
  /** Worker processes of a DP node (cluster/): one primary holds the node's identity, N workers proxy. */
  PORTICO_WORKERS: workers,
  PORTICO_STATUS_LISTEN: listen('127.0.0.1:8100'),
  PORTICO_DATA_DIR: z.string().min(1).default('./.portico'),
  PORTICO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Access log lines on the DP (one JSON line per request). */
  PORTICO_ACCESS_LOG: z.enum(['on', 'off']).default('on'),
  /** Bootstraps the first admin (role admin) with this token; or read it from the file named. */
  PORTICO_ADMIN_TOKEN: z.string().optional(),
  PORTICO_ADMIN_TOKEN_FILE: z.string().optional(),
  /** Web origins (comma-separated, exact) allowed to call the admin API from a browser. */
  PORTICO_ADMIN_GUI_ORIGINS: z.string().optional().transform((v, ctx) => {
    const list = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    for (const o of list) {
      let u: URL | null = null;
      try { u = new URL(o); } catch { /* reported below */ }
      if (o.length > 2048 || !u || !['http:', 'https:'].includes(u.protocol) || u.origin !== o) {
        ctx.addIssue({ code: 'custom', message: `'${o.length > 80 ? o.slice(0, 80) + '…' : o}' is not an origin (scheme://host[:port], no path or trailing slash)` });
        return z.NEVER;
      }
    }
    return list;
  }),
  /** NATS creds file or user nkey seed file (user/password or a token may sit in NATS_URL). */
  PORTICO_NATS_CREDS: z.string().optional(),
  /** CA bundle (PEM file) that NATS's TLS certificate must chain to. */
  PORTICO_NATS_TLS_CA: z.string().optional(),
  /** Ed25519 private key (PEM text or file) the CP signs snapshots with. */
  PORTICO_SIGNING_KEY: z.string().optional(),
  /** Ed25519 public keys (PEM text or files, comma-separated) a DP accepts snapshots from. */
  PORTICO_SIGNING_PUBLIC_KEYS: z.string().optional(),
  /** nginx's `underscores_in_headers`: forward client headers whose names hold `_` (off: dropped). */
  PORTICO_UNDERSCORES_IN_HEADERS: z.enum(['on', 'off']).default('off'),
  /** Kong's `client_body_timeout`: the longest pause between two reads of a body a plugin buffers (408 after). */
  PORTICO_CLIENT_BODY_TIMEOUT_MS: ms(60_000),
  /** Bound on finishing in-flight requests after SIGTERM. */
  PORTICO_SHUTDOWN_TIMEOUT_MS: ms(10_000),
  /**
   * Proxies whose PORTICO_REAL_IP_HEADER is believed (Kong's trusted_ips; nginx realip). Unset:
   * none, so the client address is always the TCP peer.
   */
  PORTICO_TRUSTED_IPS: trustedIps,
  PORTICO_REAL_IP_HEADER: realIpHeader,
  /** Walk the header from the right past trusted proxies (Kong's real_ip_recursive). */
  PORTICO_REAL_IP_RECURSIVE: onOff('off'),
  /** Portico Manager, the web UI (CP); `off` serves none. */
  PORTICO_GUI_LISTEN: listenOrOff('127.0.0.1:8002'),
  /**
   * Data planes' status `/metrics` URLs that Portico Manager charts (comma-separated http(s) URLs).
   * Set by the operator, never learned from the bus: a heartbeat must not make the CP fetch an
   * address of its choosing. The all-in-one charts its embedded DP without it.
   */
  PORTICO_GUI_TRAFFIC_SOURCES: z.string().optional().transform((v, ctx) => {
    const list = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (list.length > 256) { ctx.addIssue({ code: 'custom', message: `at most 256 URLs, got ${list.length}` }); return z.NEVER; }
    for (const o of list) {
      let u: URL | null = null;
      try { u = new URL(o); } catch { /* reported below */ }
      if (o.length > 2048 || !u || !['http:', 'https:'].includes(u.protocol) || u.username || u.password || /[\s\u0000-\u001f]/.test(o)) {
        ctx.addIssue({ code: 'custom', message: `'${o.length > 80 ? o.slice(0, 80) + '…' : o}' is not an http(s) URL without credentials` });
        return z.NEVER;
      }
    }
    return list;
  }),
  /** A declarative config file (kong.yml, YAML or JSON) loaded into the store at start. */
  PORTICO_DECLARATIVE_CONFIG: z.string().optional(),
  /** AES-256 key (base64 or hex, 32 bytes) that keeps key-auth keys encrypted at rest; or the file holding it. */
  PORTICO_KEYRING_KEY: z.string().optional(),
  PORTICO_KEYRING_KEY_FILE: z.string().optional(),
  /**
   * The CP's nice value (`npm run control-plane`): below the proxy's, so on a machine it shares with
   * data planes a config build yields the cores to proxied requests; 0 leaves it as started.
   */
  PORTICO_CP_NICE: wholeNumber('a nice value', 0, 19, () => 10),
  /** Config versions kept for GET /config/versions and rollback. */
  PORTICO_CONFIG_HISTORY: z.coerce.number().int().min(1).max(100_000).default(100),
  /** TLS proxy listener, HTTP/2 and HTTP/1.1 by ALPN (Kong's `proxy_listen … 8443 http2 ssl`); `off`: none. */
  PORTICO_PROXY_TLS_LISTEN: listenOrOff('0.0.0.0:8443'),
  /**
   * A second TLS listener that asks every client for a certificate (accepting any; mtls-auth
   * verifies it per route against its own CAs). Separate so browsers on the main TLS port are
   * never prompted: Node cannot ask per SNI. `off` (default): none.
   */
  PORTICO_PROXY_MTLS_LISTEN: listenOrOff('off'),
  /** Cleartext HTTP/2 with prior knowledge (h2c, gRPC clients on a trusted network); `off` (default): none. */
  PORTICO_PROXY_H2C_LISTEN: listenOrOff('off'),
  /** Default certificate (PEM text or file) when no SNI matches (Kong's `ssl_cert`); unset: a generated self-signed one. */
  PORTICO_SSL_CERT: z.string().optional(),
  /** Its private key (PEM text or file; Kong's `ssl_cert_key`). */
  PORTICO_SSL_CERT_KEY: z.string().optional(),
  /**
   * OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces) for node-level spans: a config
   * write's admin request, snapshot build and publish on the CP, and each DP's apply, as one trace.
   * Unset: none. Per-request proxy spans are the opentelemetry plugin's, not this.
   */
  PORTICO_OTEL_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
});
export type Env = z.infer<typeof envSchema>;

export class EnvError extends Error {}

export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const relevant: Record<string, string | undefined> = {};
  for (const k of Object.keys(envSchema.shape)) relevant[k] = source[k] === '' ? undefined : source[k];
  const r = envSchema.safeParse(relevant);
  if (!r.success) {
    throw new EnvError('invalid environment: ' + r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  return r.data;
}

/** The contents of the file a variable names; a failure is an EnvError naming the variable. */
export function readVariableFile(file: string, variable: string): Buffer {
  try { return readFileSync(file); } catch (err) {
    throw new EnvError(`${variable}: cannot read '${file}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
