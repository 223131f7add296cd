// Node-level traces of a config change (issue 13): an admin write, the snapshot build and publish on
// the CP, and each DP's apply are one trace, so "how long until every node ran my change" shows up
// in the tracing backend. The CP's publish span travels as a W3C traceparent in the snapshot
// object's metadata, beside the signed bytes: it is not a trust input (a forged one only misfiles a
// span), so it is not signed, but it is validated before use so a hostile value cannot throw.
// Exported via OTLP/HTTP when PORTICO_OTEL_TRACES_ENDPOINT is set; otherwise no span exists.
import { ROOT_CONTEXT, trace, TraceFlags, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { parseTraceparent } from './traceparent.ts';

/**
 * The traceparent if it is a well-formed W3C version-00 one with non-zero ids, written exactly as
 * the CP writes it (lowercase, no padding), else null. Parsed by the one W3C parser.
 */
export function validTraceparent(value: unknown): string | null {
  if (typeof value !== 'string' || value.length !== 55 || !value.startsWith('00-') || value !== value.toLowerCase()) return null;
  return parseTraceparent(value) ? value : null;
}

/** A remote parent context from a traceparent (the root context if it is missing or malformed). */
export function parentContext(traceparent: unknown): Context {
  const p = validTraceparent(traceparent) && parseTraceparent(traceparent as string);
  if (!p) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: p.traceId, spanId: p.spanId, traceFlags: p.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true });
}

export function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags & TraceFlags.SAMPLED}`;
}

export interface NodeTracer { tracer: Tracer; shutdown(): Promise<void> }

/**
 * A tracer exporting to `endpoint` (an OTLP/HTTP traces URL), or null when none is configured.
 * Config writes are rare: every span is exported (no sampling), batched briefly.
 */
export async function nodeTracer(endpoint: string | undefined, serviceName: string, nodeId: string): Promise<NodeTracer | null> {
  if (!endpoint) return null;
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'), import('@opentelemetry/exporter-trace-otlp-http'), import('@opentelemetry/resources'),
  ]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.instance.id': nodeId }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), { scheduledDelayMillis: 200 })],
  });
  return { tracer: provider.getTracer('portico'), shutdown: () => provider.shutdown() };
}
