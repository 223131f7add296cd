import { z } from 'zod';
import { bool, foreign, host, int, oneOf, opt, set, tags, text, timestamp, utf8Name, uuid } from './fields.ts';
import { circuitBreakerSchema } from './upstream.ts';

export const SERVICE_PROTOCOLS = ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls', 'tls_passthrough', 'udp'] as const;
const MAX_TIMEOUT_MS = 2 ** 31 - 2;
export const DEFAULT_TIMEOUT_MS = 60_000;

/** A path as Kong's `path` type: starts with `/`, no empty segments, valid percent-encoding. */
export const servicePath = () =>
  text().superRefine((v, ctx) => {
    if (!v.startsWith('/')) ctx.addIssue({ code: 'custom', message: 'should start with: /' });
    else if (v.includes('//')) ctx.addIssue({ code: 'custom', message: 'must not have empty segments' });
    else if (/%(?![0-9a-fA-F]{2})/.test(v)) ctx.addIssue({ code: 'custom', message: 'invalid url-encoded value' });
    else if (/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/.test(v)) ctx.addIssue({ code: 'custom', message: 'invalid path: contains characters outside RFC 3986' });
  });

/** A service: an upstream API that routes send traffic to (reference/kong-compat.md §2.1). */
export const serviceSchema = z.strictObject({
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
  updated_at: timestamp().describe('Last update time, seconds since the epoch'),
  name: opt(utf8Name()).describe('Unique name; usable in place of the id in admin paths'),
  protocol: oneOf(SERVICE_PROTOCOLS).default('http').describe('Protocol used to talk to the upstream'),
  host: host().describe('Upstream host name, IP, or the name of an upstream entity'),
  port: int(0, 65535).default(80).describe('Upstream port'),
  path: opt(servicePath()).describe('Path prefixed to every upstream request'),
  retries: int(0, 32767).default(5).describe('Retries on connection failure or timeout'),
  connect_timeout: int(1, MAX_TIMEOUT_MS).default(DEFAULT_TIMEOUT_MS).describe('Connect timeout, ms'),
  write_timeout: int(1, MAX_TIMEOUT_MS).default(DEFAULT_TIMEOUT_MS).describe('Timeout between two writes to the upstream, ms'),
  read_timeout: int(1, MAX_TIMEOUT_MS).default(DEFAULT_TIMEOUT_MS).describe('Timeout between two reads from the upstream, ms'),
  enabled: bool().default(true).describe('A disabled service takes its routes out of the router'),
  tls_verify: opt(bool()).describe('Verify the upstream TLS certificate (https only)'),
  tls_verify_depth: opt(int(0, 64)).describe('Maximum certificate chain depth (https only)'),
  ca_certificates: opt(set(uuid())).describe('CA certificate ids used to verify the upstream'),
  client_certificate: foreign().describe('Client certificate presented to the upstream'),
  tags: tags().describe('Free-form tags for filtering'),
  circuit_breaker: opt(circuitBreakerSchema).describe('Portico: a breaker for the whole service when its host is not an upstream (null: off)'),
}).superRefine((s, ctx) => {
  if (s.path != null && !['http', 'https'].includes(s.protocol)) {
    ctx.addIssue({ code: 'custom', path: ['path'], message: `value must be null when 'protocol' is '${s.protocol}'` });
  }
  if (!['https', 'tls', 'grpcs'].includes(s.protocol)) {
    for (const f of ['tls_verify', 'tls_verify_depth', 'client_certificate'] as const) {
      if (s[f] != null) ctx.addIssue({ code: 'custom', path: [f], message: `value must be null when 'protocol' is '${s.protocol}'` });
    }
  }
});
export type Service = z.infer<typeof serviceSchema>;

/**
 * Expand the write-only `url` shorthand into protocol, host, port and path (§1.5).
 * Returns field errors as values rather than throwing.
 */
export function expandServiceUrl(input: Record<string, unknown>): { ok: true; value: Record<string, unknown> } | { ok: false; path: string; message: string } {
  if (!('url' in input)) return { ok: true, value: input };
  const { url, ...rest } = input;
  if (typeof url !== 'string') return { ok: false, path: 'url', message: 'expected a string' };
  if (url.trim() === '') return { ok: false, path: 'url', message: 'length must be at least 1' };
  let parsed: URL | null = null;
  try { parsed = new URL(url); } catch { parsed = null; }
  if (!parsed || !parsed.hostname || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    // Kong reports what the split produced: no host and a non-slash path.
    return { ok: true, value: { ...rest, host: undefined, path: url, protocol: undefined, port: undefined } };
  }
  const protocol = parsed.protocol.replace(/:$/, '');
  const port = parsed.port ? Number(parsed.port) : protocol === 'https' ? 443 : 80;
  const hasPath = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*\//i.test(url);
  return {
    ok: true,
    value: { ...rest, protocol, host: parsed.hostname.replace(/^\[|\]$/g, ''), port, path: hasPath ? parsed.pathname : null },
  };
}
