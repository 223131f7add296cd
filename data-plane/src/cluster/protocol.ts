// Messages between a DP node's primary and its workers (node:cluster IPC with the 'advanced'
// serialization, so snapshot bytes cross as bytes). Both ends are this program: the channel is
// trusted, and a message of an unknown type is a bug, logged and dropped.
import type { Heartbeat, Upstream } from '@portico/shared';
import type { Algorithm, Grant, Limit } from '@portico/shared/plugins/handlers';
import type { SharedHealth } from '../proxy/balancer.ts';

/** A target's health or breaker change, learned by one process of the node. */
export interface HealthMessage { t: 'health'; upstream: string; target: string; s: SharedHealth }

/** An upstream's definition and targets, enough for the primary's active probes and health view. */
export interface UpstreamTargets { upstream: Upstream; targets: { target: string; weight: number }[] }

export type ToWorker =
  /** The node's current config, answering `hello`; null when the node has none yet. */
  | { t: 'init'; seq: number; bytes: Uint8Array | null }
  /** A snapshot whose signature the primary verified. */
  | { t: 'snapshot'; seq: number; bytes: Uint8Array; traceparent?: string }
  /** A signed health override from the CP, as received (each process verifies it). */
  | { t: 'override'; bytes: Uint8Array }
  | HealthMessage
  /** Grants for one batch of rate-limit leases asked for, in order. */
  | { t: 'rl'; id: number; grants: Grant[] }
  | { t: 'query'; id: number; what: 'counters' | 'metrics' }
  /** A signed proxy-cache command from the CP, as received (each worker verifies it and answers a CacheReply or null). */
  | { t: 'query'; id: number; what: 'cache'; bytes: Uint8Array };

export type ToPrimary =
  | { t: 'hello' }
  /** The outcome of applying `seq`; `upstreams` when it changed the running config. */
  | { t: 'applied'; seq: number; ok: boolean; version: number; upstreams?: UpstreamTargets[] }
  | { t: 'hb'; hb: Heartbeat }
  | HealthMessage
  /** Leases of the node's local counters: up to `want` units of each key's limits. */
  | { t: 'rl'; id: number; asks: [key: string, limits: Limit[], algorithm: Algorithm, want: number][] }
  | { t: 'answer'; id: number; value: unknown };

/** How a worker's counters answer a `counters` query. */
export interface WorkerCounters { requests: number; connections: number }
