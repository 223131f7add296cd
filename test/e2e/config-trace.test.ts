// A config write as one trace (issue 13): the CP's admin request, snapshot build and publish, and
// each of two DPs' apply, received by a real OTLP/HTTP receiver with PORTICO_OTEL_TRACES_ENDPOINT
// set on every node; and a hostile traceparent beside a snapshot in NATS changes nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { startStack, type Stack } from '../harness/stack.ts';
import { waitFor } from '../harness/procs.ts';
import { startOtlpReceiver, type ReceivedSpan } from '../harness/otlp.ts';

let s: Stack;
let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;

before(async () => {
  otlp = await startOtlpReceiver();
  const env = { PORTICO_OTEL_TRACES_ENDPOINT: `${otlp.url}/v1/traces` };
  s = await startStack({ dps: 2, cpEnv: env, dpEnv: env });
});
after(async () => { await s?.stop(); await otlp?.close(); });

const applies = (traceId: string) => otlp.received.filter((x) => x.traceId === traceId && x.name === 'config apply');

describe('a config write is one trace', () => {
  it('admin request → snapshot build → publish → each DP applies, with correct parents', async () => {
    const r = await s.write('POST', '/services', { name: 'traced', url: s.upstream.url });
    assert.equal(r.status, 201);
    const version = Number(r.headers.get('x-portico-config-version'));

    const request = await waitFor('admin request span', async () => otlp.received.find((x) => x.name === 'admin POST' && x.attributes['url.path'] === '/services'));
    assert.equal(request.kind, 2, 'SERVER');
    assert.equal(request.parentSpanId, '');
    assert.equal(request.resource['service.name'], 'portico-control-plane');
    assert.equal(request.attributes['http.response.status_code'], 201);

    const spans = await waitFor('build, publish and two applies', async () => {
      const inTrace = otlp.received.filter((x) => x.traceId === request.traceId);
      const build = inTrace.find((x) => x.name === 'snapshot build');
      const publish = inTrace.find((x) => x.name === 'snapshot publish');
      return build && publish && applies(request.traceId).length >= 2 && { build, publish };
    });
    assert.equal(spans.build.parentSpanId, request.spanId);
    assert.equal(spans.build.attributes['portico.config.version'], version);
    assert.equal(spans.publish.parentSpanId, request.spanId);
    const dpSpans: ReceivedSpan[] = applies(request.traceId);
    assert.equal(dpSpans.length, 2);
    for (const a of dpSpans) {
      assert.equal(a.parentSpanId, spans.publish.spanId, 'each apply is a child of the publish span');
      assert.equal(a.resource['service.name'], 'portico-data-plane');
      assert.equal(a.attributes['portico.config.apply'], 'applied');
      assert.equal(a.attributes['portico.config.version'], version);
    }
    assert.notEqual(dpSpans[0].resource['service.instance.id'], dpSpans[1].resource['service.instance.id'], 'one apply per DP');
  });

  it('a hostile traceparent beside a snapshot neither crashes a DP nor parents its span', async () => {
    const nc = await connect({ servers: s.nats.url });
    try {
      const os = await new Objm(nc).create('portico_config');
      const info = await os.info('snapshot');
      const bytes = (await os.getBlob('snapshot'))!;
      const before = otlp.received.length;
      // The CP's own signed bytes, announced as a newer version with a hostile traceparent.
      const hostile = `00-${'0'.repeat(32)}-${'g'.repeat(16)}-01\n${'x'.repeat(10_000)}`;
      await os.putBlob({ name: 'snapshot', metadata: { ...info!.metadata, version: String(Number(info!.metadata!.version) + 1000), traceparent: hostile } }, bytes);
      const seen = await waitFor('applies of the re-announced snapshot', async () => {
        const got = otlp.received.slice(before).filter((x) => x.name === 'config apply');
        return new Set(got.map((x) => x.resource['service.instance.id'])).size === 2 && got;
      });
      for (const a of seen) {
        assert.equal(a.parentSpanId, '', 'a malformed traceparent starts a new trace');
        assert.equal(a.attributes['portico.config.apply'], 'ignored', 'same signed version: nothing changes');
      }
    } finally {
      await nc.close();
    }
    // Both DPs still run and take the next real write.
    const r = await s.write('POST', '/services', { name: 'after-hostile', url: s.upstream.url });
    assert.equal(r.status, 201);
    for (const dp of s.dps) assert.equal(dp.proc.exitCode, null);
  });
});
