import { z } from 'zod';
import { bool, oneOf } from '../../entities/fields.ts';
import { kongHeaderName } from '../http-fields.ts';
import type { PluginDefinition } from '../types.ts';

export const correlationIdConfig = z.strictObject({
  header_name: kongHeaderName().default('Kong-Request-ID').describe('Header carrying the id (kept when the client sends one)'),
  generator: oneOf(['uuid', 'uuid#counter', 'tracker']).default('uuid#counter')
    .describe("'uuid': a random UUID per request; 'uuid#counter': a per-process UUID and a counter; 'tracker': node address, port, pid, connection, request and time"),
  echo_downstream: bool().default(false).describe('Send the id back to the client'),
});
export type CorrelationIdConfig = z.infer<typeof correlationIdConfig>;

// Runs first (before authentication), so a consumer-scoped config could never be chosen.
export const correlationId: PluginDefinition = { name: 'correlation-id', priority: 100001, configSchema: correlationIdConfig, noConsumerScope: true };
