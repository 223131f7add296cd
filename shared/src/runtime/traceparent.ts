// The W3C traceparent (https://www.w3.org/TR/trace-context/ §3.2), parsed in one place: the DP's
// request propagation reads it from a header, the config trace from a snapshot's metadata.

export interface W3cTraceParent { traceId: string; spanId: string; sampled: boolean }

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Version ff and all-zero ids are invalid; a version above 00 may carry more fields. */
export function parseTraceparent(v: string | undefined): W3cTraceParent | null {
  if (v === undefined || v.length < 55) return null;
  const m = TRACEPARENT.exec(v.trim().toLowerCase());
  if (!m || m[1] === 'ff' || (m[1] === '00' && v.trim().length !== 55) || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return null;
  return { traceId: m[2], spanId: m[3], sampled: (parseInt(m[4], 16) & 1) === 1 };
}
