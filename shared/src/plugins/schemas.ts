// The CP's view of plugins: names, priorities and config schemas. No handler code is imported here.
import type { PluginDefinition } from './types.ts';
import { acl } from './acl/schema.ts';
import { basicAuth } from './basic-auth/schema.ts';
import { jwt } from './jwt/schema.ts';
import { keyAuth } from './key-auth/schema.ts';
import { rateLimiting } from './rate-limiting/schema.ts';
import { canary } from './canary/schema.ts';
import { cors } from './cors/schema.ts';
import { ipRestriction } from './ip-restriction/schema.ts';
import { requestSizeLimiting } from './request-size-limiting/schema.ts';
import { requestTermination } from './request-termination/schema.ts';
import { correlationId } from './correlation-id/schema.ts';
import { requestTransformer, requestTransformerAdvanced } from './request-transformer/schema.ts';
import { responseTransformer, responseTransformerAdvanced } from './response-transformer/schema.ts';
import { jsonTransform } from './json-transform/schema.ts';
import { mtlsAuth } from './mtls-auth/schema.ts';
import { prometheus } from './prometheus/schema.ts';
import { openTelemetry } from './opentelemetry/schema.ts';
import { fileLog } from './file-log/schema.ts';
import { httpLog } from './http-log/schema.ts';
import { requestValidator } from './request-validator/schema.ts';
import { proxyCache } from './proxy-cache/schema.ts';
import { aggregator } from './aggregator/schema.ts';

export const PLUGIN_DEFINITIONS: ReadonlyMap<string, PluginDefinition> = new Map(
  [keyAuth, jwt, basicAuth, acl, rateLimiting, canary,
    cors, ipRestriction, requestSizeLimiting, requestTermination, correlationId,
    requestTransformer, responseTransformer,
    requestTransformerAdvanced, responseTransformerAdvanced, jsonTransform, mtlsAuth,
    prometheus, openTelemetry, fileLog, httpLog,
    requestValidator, proxyCache, aggregator].map((d) => [d.name, d]),
);
export type { PluginDefinition };
