// Each snapshot apply as a span in the config write's trace (shared/src/runtime/config-trace.ts):
// its parent is the CP's publish span, from the traceparent that came with the snapshot. That value
// is unsigned and may be anything; parentContext validates it, and a malformed one only starts a
// new trace (the signature check in ConfigState.apply is untouched by it).
import { SpanStatusCode } from '@opentelemetry/api';
import { parentContext, type NodeTracer, type SnapshotHandler } from '@portico/shared';
import type { ConfigState } from './config-state.ts';

/** The bus handler: applies a snapshot, inside a span when node-level tracing is on. */
export function tracedApply(state: ConfigState, node: NodeTracer | null): SnapshotHandler {
  return async (bytes, traceparent, release) => {
    if (!node) return (await state.apply(bytes, { release })).status !== 'rejected';
    const span = node.tracer.startSpan('config apply', {}, parentContext(traceparent));
    const r = await state.apply(bytes, { release });
    span.setAttribute('portico.config.apply', r.status);
    if (r.status === 'applied') span.setAttributes({ 'portico.config.version': r.version, 'portico.config.compile_ms': r.compileMs });
    if (r.status === 'rejected') span.setStatus({ code: SpanStatusCode.ERROR, message: r.error });
    span.end();
    return r.status !== 'rejected';
  };
}
