// Trace-context headers: W3C traceparent (https://www.w3.org/TR/trace-context/) and Zipkin B3, in
// its multi-header (X-B3-*) and single-header (`b3`) forms. Pure functions, no span objects.
import type { IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { parseTraceparent as parseW3c } from '@portico/shared';

export type Format = 'w3c' | 'b3' | 'b3-single';

export interface TraceParent {
  traceId: string;
  spanId: string;
  /** The caller's sampling decision; null when it made none (B3 allows that). */
  sampled: boolean | null;
  format: Format;
}

const ZERO_SPAN = '0'.repeat(16);
const HEX_ID = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** W3C §3.2 (shared/src/runtime/traceparent.ts), as this module's TraceParent. */
export function parseTraceparent(v: string | undefined): TraceParent | null {
  const p = parseW3c(v);
  return p && { ...p, format: 'w3c' };
}

const b3Sampled = (v: string | undefined): boolean | null => (v === '1' || v === 'true' || v === 'd' ? true : v === '0' || v === 'false' ? false : null);
const padTrace = (id: string) => (id.length === 16 ? ZERO_SPAN + id : id);

function parseB3Single(v: string | undefined): TraceParent | null {
  if (!v) return null;
  const [traceId, spanId, sampled] = v.trim().toLowerCase().split('-');
  if (!traceId || !spanId || !HEX_ID.test(traceId) || !/^[0-9a-f]{16}$/.test(spanId)) return null;
  return { traceId: padTrace(traceId), spanId, sampled: b3Sampled(sampled), format: 'b3-single' };
}

function parseB3Multi(h: IncomingHttpHeaders): TraceParent | null {
  const traceId = first(h['x-b3-traceid'])?.toLowerCase(), spanId = first(h['x-b3-spanid'])?.toLowerCase();
  if (!traceId || !spanId || !HEX_ID.test(traceId) || !/^[0-9a-f]{16}$/.test(spanId)) return null;
  const sampled = first(h['x-b3-flags']) === '1' ? true : b3Sampled(first(h['x-b3-sampled']));
  return { traceId: padTrace(traceId), spanId, sampled, format: 'b3' };
}

/** The first parent found in `formats` order ('b3' reads both B3 forms, as Kong's). */
export function extract(h: IncomingHttpHeaders, formats: readonly Format[]): TraceParent | null {
  for (const f of formats) {
    const p = f === 'w3c' ? parseTraceparent(first(h.traceparent))
      : f === 'b3' ? parseB3Multi(h) ?? parseB3Single(first(h.b3))
        : parseB3Single(first(h.b3));
    if (p) return p;
  }
  return null;
}

/** Writes the context in each format (upstream headers, lower-case names). */
export function inject(out: Record<string, string | string[]>, formats: readonly Format[], traceId: string, spanId: string, sampled: boolean): void {
  for (const f of formats) {
    if (f === 'w3c') out.traceparent = `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
    else if (f === 'b3') { out['x-b3-traceid'] = traceId; out['x-b3-spanid'] = spanId; out['x-b3-sampled'] = sampled ? '1' : '0'; }
    else out.b3 = `${traceId}-${spanId}-${sampled ? '1' : '0'}`;
  }
}

// Ids for requests that are not traced: drawn from a pooled buffer (one randomBytes per 256 ids).
let pool = Buffer.alloc(0);
let offset = 0;
export function randomId(bytes: 8 | 16): string {
  if (offset + bytes > pool.length) { pool = randomBytes(4096); offset = 0; }
  const id = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return id;
}

/** The trace id of an incoming W3C or B3 header, for the access log of a request no tracer saw. */
export function incomingTraceId(h: IncomingHttpHeaders): string | null {
  if (h.traceparent === undefined && h['x-b3-traceid'] === undefined && h.b3 === undefined) return null;
  return extract(h, ['w3c', 'b3'])?.traceId ?? null;
}
