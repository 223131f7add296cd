// Sampling is decided before any span object exists: a counting tracer shows when spans are made.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Span, Tracer } from '@opentelemetry/api';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
import type { OpenTelemetryConfig, ProxyContext } from '@portico/shared/plugins/handlers';
import { OtelTracer } from './tracing.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736', S = '00f067aa0ba902b7';

function setup(config: Record<string, unknown>) {
  const made: string[] = [];
  const span = (id: string) => ({
    spanContext: () => ({ traceId: T, spanId: id, traceFlags: 1 }), addEvent() { return this; }, setAttribute() { return this; }, setStatus() { return this; }, end() {},
  }) as unknown as Span;
  const tracer = { startSpan: (name: string) => { made.push(name); return span('1111111111111111'); } } as unknown as Tracer;
  const parsed = PLUGIN_DEFINITIONS.get('opentelemetry')!.configSchema.parse({ traces_endpoint: 'http://127.0.0.1:4318/v1/traces', ...config }) as OpenTelemetryConfig;
  const stats = { dropped: {} };
  return { made, tracer: new OtelTracer(parsed, { tracer }, stats) };
}

const ctx = (headers: Record<string, string> = {}): ProxyContext => ({
  requestId: 'r', method: 'GET', path: '/', headers, clientIp: '10.0.0.1', route: { id: 'route-1', name: 'r' }, service: null,
  upstreamHeaders: {}, responseHeaders: {}, consumer: null, shared: {},
}) as unknown as ProxyContext;

describe('opentelemetry sampling', () => {
  it('makes no span for an unsampled request and forwards a fresh traceparent with the flag off', () => {
    const { made, tracer } = setup({ sampling_rate: 0 });
    const c = ctx();
    tracer.access(c);
    tracer.log(c);
    assert.deepEqual(made, []);
    assert.match(c.upstreamHeaders.traceparent as string, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it("follows a parent's decision over the rate, both ways", () => {
    const yes = setup({ sampling_rate: 0 });
    const a = ctx({ traceparent: `00-${T}-${S}-01` });
    yes.tracer.access(a);
    assert.deepEqual(yes.made, ['kong']);
    assert.equal(a.upstreamHeaders.traceparent, `00-${T}-1111111111111111-01`, 'the server span is the upstream\'s parent');

    const no = setup({ sampling_rate: 1 });
    const b = ctx({ traceparent: `00-${T}-${S}-00` });
    no.tracer.access(b);
    assert.deepEqual(no.made, []);
    assert.equal(b.upstreamHeaders.traceparent, `00-${T}-${S}-00`, 'forwarded unchanged');
  });

  it('samples everything at rate 1 and writes the trace id header and the asked formats, clearing listed headers', () => {
    const { made, tracer } = setup({ sampling_rate: 1, http_response_header_for_traceid: 'X-Trace', propagation: { inject: ['w3c', 'b3-single'], clear: ['X-Old'] } });
    const c = ctx();
    c.upstreamHeaders['x-old'] = '1';
    tracer.access(c);
    assert.deepEqual(made, ['kong']);
    assert.equal(c.responseHeaders['x-trace'], T);
    assert.equal(c.upstreamHeaders.b3, `${T}-1111111111111111-1`);
    assert.equal(c.upstreamHeaders['x-old'], undefined);
  });
});
