// In-memory ports and a request context for handler unit tests (no network, an injectable clock).
import type { Consumer } from '../entities/consumer.ts';
import type { BasicAuthCredential, JwtSecret } from '../entities/credentials.ts';
import type { PluginEnv, ProxyContext } from './types.ts';
import { MemoryRateLimitStore } from './rate-limiting/store.ts';

export interface TestEnv extends PluginEnv {
  /** Counter increments and warnings, in order. */
  events: string[];
  /** Seconds; `now()` reads it. */
  clock: { s: number };
}

export function testEnv(over: { consumers?: Consumer[]; jwtSecrets?: JwtSecret[]; basicAuth?: BasicAuthCredential[]; getJson?: PluginEnv['getJson'] } = {}): TestEnv {
  const events: string[] = [];
  const clock = { s: 1_800_000_000 };
  const consumers = over.consumers ?? [];
  return {
    events, clock,
    now: () => clock.s * 1000,
    log: { warn: (o) => events.push(JSON.stringify(o)), error: (o) => events.push(JSON.stringify(o)) },
    getJson: over.getJson ?? (async () => ({})),
    index: {
      consumersById: new Map(consumers.map((c) => [c.id, c])),
      consumersByUsername: new Map(consumers.filter((c) => c.username).map((c) => [c.username!, c])),
      keyAuthByHash: new Map(),
      jwtByKey: new Map((over.jwtSecrets ?? []).map((j) => [j.key, j])),
      basicAuthByUsername: new Map((over.basicAuth ?? []).map((b) => [b.username, b])),
      aclGroupsByConsumer: new Map(),
    },
    localRateLimitStore: new MemoryRateLimitStore(() => clock.s),
    rateLimitStore: () => new MemoryRateLimitStore(() => clock.s),
    counters: { increment: (n) => events.push(n) },
  };
}

export function testCtx(over: Partial<ProxyContext> = {}): ProxyContext {
  let query: URLSearchParams | undefined;
  return {
    requestId: 'r', method: 'GET', path: '/p', headers: {}, clientIp: '10.0.0.1',
    route: { id: 'route-1' } as ProxyContext['route'], service: { id: 'svc-1' } as ProxyContext['service'],
    query: () => (query ??= new URLSearchParams()), hasQuery: () => query !== undefined && query.size > 0, upstreamHeaders: {}, responseHeaders: {},
    consumer: null, credential: null, authenticatedGroups: null, shared: {}, serviceOverride: null, ...over,
  };
}
