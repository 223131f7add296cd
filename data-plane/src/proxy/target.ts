// Where a service's requests go, worked out once per snapshot instead of once per request:
// origin, default Host header, and the balancer when the service host names an upstream (or the
// service has its own circuit breaker).
import type { Service } from '@portico/shared';
import type { UpstreamBalancer } from './balancer.ts';
import { upstreamTlsFor, type TlsMaterial, type UpstreamTls } from '../tls/upstream.ts';

export interface ServiceTarget {
  service: Service;
  scheme: 'http' | 'https';
  defaultPort: number;
  /** `scheme://host:port` of the service host itself. */
  origin: string;
  /** The Host header for the service host (port omitted when it is the scheme's default). */
  hostHeader: string;
  balancer: UpstreamBalancer | null;
  /** Which pooled agent serves it (connect timeout and TLS verification are per connection). */
  agentKey: string;
  /** https services: verification, CAs, depth and client certificate (tls/upstream.ts). */
  tls: UpstreamTls | null;
}

/** IPv6 literals go in brackets in URLs and Host headers. */
export const bracket = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** `host[:port]` unless the port is the scheme's default. */
export const hostPort = (host: string, port: number, defaultPort: number): string =>
  port === defaultPort ? bracket(host) : `${bracket(host)}:${port}`;

/** A service with its own breaker and no upstream becomes a one-target upstream of this name. */
export function serviceBreakerName(serviceId: string): string {
  return `svc-${serviceId}.breaker.portico`;
}

/** Targets by service id and by service name. */
export function compileTargets(services: Service[], balancers: Map<string, UpstreamBalancer>, tlsMaterial?: TlsMaterial): Map<string, ServiceTarget> {
  const out = new Map<string, ServiceTarget>();
  for (const service of services) {
    const scheme = service.protocol === 'https' ? 'https' : 'http';
    const defaultPort = scheme === 'https' ? 443 : 80;
    const tls = tlsMaterial ? upstreamTlsFor(service, tlsMaterial) : null;
    const t: ServiceTarget = {
      service, scheme, defaultPort,
      origin: `${scheme}://${bracket(service.host)}:${service.port}`,
      hostHeader: hostPort(service.host, service.port, defaultPort),
      balancer: balancers.get(service.host.toLowerCase())
        ?? (service.circuit_breaker ? balancers.get(serviceBreakerName(service.id)) : undefined) ?? null,
      agentKey: `${service.connect_timeout}|${tls?.key ?? service.tls_verify === true}`,
      tls,
    };
    out.set(service.id, t);
    if (service.name) out.set(service.name, t);
  }
  return out;
}

/** Split a request target into path and query (`?…` kept), accepting absolute-form (RFC 9112 §3.2.2). */
export function splitUrl(url: string): { path: string; query: string } {
  let u = url;
  if (!u.startsWith('/')) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(u);
    u = m ? u.slice(m[0].length) || '/' : '/' + u;
  }
  const q = u.indexOf('?');
  return q === -1 ? { path: u, query: '' } : { path: u.slice(0, q), query: u.slice(q) };
}

/**
 * The authority of an absolute-form request target (`http://internal.example/h` →
 * `internal.example`), userinfo dropped; null for origin-form. RFC 9112 §3.2.2: when the target
 * is absolute, its authority replaces the Host header, for routing and for what goes upstream.
 */
export function authorityOf(url: string): string | null {
  if (url.charCodeAt(0) === 47 /* / */) return null;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url);
  if (!m) return null;
  const at = m[1].lastIndexOf('@');
  return at === -1 ? m[1] : m[1].slice(at + 1);
}

