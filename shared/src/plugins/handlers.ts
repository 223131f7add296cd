// The DP's view of plugins: the code that runs per request.
import type { PluginHandler } from './types.ts';
import { aclHandler } from './acl/handler.ts';
import { basicAuthHandler } from './basic-auth/handler.ts';
import { jwtHandler } from './jwt/handler.ts';
import { keyAuthHandler } from './key-auth/handler.ts';
import { rateLimitingHandler } from './rate-limiting/handler.ts';
import { canaryHandler } from './canary/handler.ts';
import { corsHandler } from './cors/handler.ts';
import { ipRestrictionHandler } from './ip-restriction/handler.ts';
import { requestSizeLimitingHandler } from './request-size-limiting/handler.ts';
import { requestTerminationHandler } from './request-termination/handler.ts';
import { correlationIdHandler } from './correlation-id/handler.ts';
import { requestTransformerAdvancedHandler, requestTransformerHandler } from './request-transformer/handler.ts';
import { responseTransformerAdvancedHandler, responseTransformerHandler } from './response-transformer/handler.ts';
import { jsonTransformHandler } from './json-transform/handler.ts';
import { mtlsAuthHandler } from './mtls-auth/handler.ts';
import { prometheusHandler } from './prometheus/handler.ts';
import { openTelemetryHandler } from './opentelemetry/handler.ts';
import { fileLogHandler } from './file-log/handler.ts';
import { httpLogHandler } from './http-log/handler.ts';
import { requestValidatorHandler } from './request-validator/handler.ts';
import { proxyCacheHandler } from './proxy-cache/handler.ts';
import { aggregatorHandler } from './aggregator/handler.ts';

export const PLUGIN_HANDLERS: ReadonlyMap<string, PluginHandler> = new Map(
  [keyAuthHandler, jwtHandler, basicAuthHandler, aclHandler, rateLimitingHandler, canaryHandler,
    corsHandler, ipRestrictionHandler, requestSizeLimitingHandler, requestTerminationHandler, correlationIdHandler,
    requestTransformerHandler, responseTransformerHandler,
    requestTransformerAdvancedHandler, responseTransformerAdvancedHandler, jsonTransformHandler, mtlsAuthHandler,
    prometheusHandler, openTelemetryHandler, fileLogHandler, httpLogHandler,
    requestValidatorHandler, proxyCacheHandler, aggregatorHandler].map((h) => [h.name, h as PluginHandler]),
);
export * from './types.ts';
export { isJsonType, mediaType } from './media.ts';
export type { RedisConnectionConfig } from './types.ts';
export { IDENTITY_HEADERS } from './auth.ts';
export type { Consumer } from '../entities/consumer.ts';
export type { Route } from '../entities/route.ts';
export type { Service } from '../entities/service.ts';
export { MemoryRateLimitStore, type RateLimitStore, type Decision, type Limit, type Algorithm, type Grant } from './rate-limiting/store.ts';
export type { PrometheusConfig } from './prometheus/schema.ts';
export type { OpenTelemetryConfig } from './opentelemetry/schema.ts';
export type { FileLogConfig } from './file-log/schema.ts';
export type { HttpLogConfig } from './http-log/schema.ts';
export type { ProxyCacheConfig } from './proxy-cache/schema.ts';
export { MemoryCacheStore, TieredCacheStore, matchesPurge, splitName, REVALIDATE_HEADER, type CacheStore, type CachedResponse, type ProxyCachePort, type PurgeFilter } from './proxy-cache/store.ts';
