// Which config every node runs, and how traffic is doing per service over the last minutes.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { get } from '../api.ts';

const REFRESH_MS = 5_000;
const STATUS_LABEL: Record<string, string> = { in_sync: 'in sync', behind: 'behind', apply_failed: 'failed', unknown: 'unknown' };
/** The charts' time axis: from the first point the history holds (at most ten minutes back, at least two) to now. */
const WINDOW_MAX_S = 600;
const WINDOW_MIN_S = 120;
const COLORS = ['#1e88e5', '#e53935', '#43a047', '#fb8c00', '#8e24aa', '#00897b', '#6d4c41'];

interface Point { t: number; rps: number; error_rate: number; p99_ms: number | null }
type Traffic = { interval_s: number; sources: number; services: Record<string, Point[]> };

function usePoll<T>(path: string): [T | null, string | null] {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const load = () => get<T>(path).then((d) => { if (live) { setData(d); setError(null); } }).catch((e) => live && setError(e.message));
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => { live = false; clearInterval(timer); };
  }, [path]);
  return [data, error];
}

/** One chart, a line per service, over the time points the traffic history holds. */
function Chart({ title, traffic, pick, unit }: { title: string; traffic: Traffic; pick: (p: Point) => number | null; unit: string }) {
  const el = useRef<HTMLDivElement>(null);
  const names = Object.keys(traffic.services).sort();
  useEffect(() => {
    if (!el.current) return;
    const times = [...new Set(names.flatMap((n) => traffic.services[n].map((p) => p.t)))].sort((a, b) => a - b);
    const series = names.map((n) => { const m = new Map(traffic.services[n].map((p) => [p.t, pick(p)])); return times.map((t) => m.get(t) ?? null); });
    const plot = new uPlot({
      width: Math.max(280, el.current.clientWidth), height: 180, title,
      scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [Math.max(now - WINDOW_MAX_S, Math.min(times[0] ?? now, now - WINDOW_MIN_S)), now]; } } },
      series: [{}, ...names.map((n, i) => ({ label: n === '*' ? 'all' : n, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true }))],
      axes: [{ stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } }, { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' }, label: unit }],
    }, [times, ...series] as uPlot.AlignedData, el.current);
    return () => plot.destroy();
  }, [traffic, title]);
  return <figure class="chart" aria-label={`${title} chart: ${names.length} series`}><div ref={el} /></figure>;
}

/** The charts in words (and for screen readers): per service, over the window the history holds. */
function TrafficSummary({ traffic }: { traffic: Traffic }) {
  const rows = Object.entries(traffic.services).sort(([a], [b]) => a.localeCompare(b)).map(([name, points]) => {
    const requests = Math.round(points.reduce((n, p) => n + p.rps * traffic.interval_s, 0));
    const errors = Math.round(points.reduce((n, p) => n + p.rps * traffic.interval_s * p.error_rate, 0));
    const p99 = points.reduce<number | null>((m, p) => (p.p99_ms == null ? m : Math.max(m ?? 0, p.p99_ms)), null);
    return { name: name === '*' ? 'all services' : name, requests, errors, p99, seconds: points.length * traffic.interval_s };
  });
  return (
    <table aria-label="Traffic summary" class="striped">
      <thead><tr><th scope="col">service</th><th scope="col">requests</th><th scope="col">5xx</th><th scope="col">worst p99</th><th scope="col">window</th></tr></thead>
      <tbody>{rows.map((r) => <tr key={r.name}><td>{r.name}</td><td data-testid="requests">{r.requests}</td><td>{r.errors}</td><td>{r.p99 == null ? 'n/a' : `${r.p99} ms`}</td><td>{r.seconds} s</td></tr>)}</tbody>
    </table>
  );
}

export function Overview() {
  const [nodes, nodesError] = usePoll<{ data: any[] }>('/clustering/data-planes');
  const [status] = usePoll<any>('/status');
  const [traffic, trafficError] = usePoll<Traffic>('/gui/traffic');
  const latest = status?.configuration;
  const services = traffic ? Object.keys(traffic.services) : [];
  return (
    <section aria-labelledby="page-title">
      <h2 id="page-title">Overview</h2>
      <p>Latest config: {latest ? <>version <strong>{latest.version}</strong>, hash <code>{latest.hash.slice(0, 12)}</code></> : 'none built yet'}</p>
      <h3>Data-plane nodes</h3>
      {nodesError && <p role="alert" class="form-error">{nodesError}</p>}
      <div class="table-wrap">
        <table class="striped" aria-label="Data-plane nodes">
          <thead><tr><th scope="col">node</th><th scope="col">hostname</th><th scope="col">version</th><th scope="col">hash</th><th scope="col">lag</th><th scope="col">state</th><th scope="col">last error</th><th scope="col">last seen</th></tr></thead>
          <tbody>
            {(nodes?.data ?? []).map((n) => (
              <tr key={n.id}>
                <td><code>{n.id.slice(0, 8)}</code></td><td>{n.hostname}</td><td>{n.config_version}</td><td><code>{n.config_hash?.slice(0, 12)}</code></td>
                <td>{latest ? Math.max(0, latest.version - n.config_version) : ''}</td>
                <td><span class={`badge ${n.config_status === 'in_sync' ? 'ok' : n.config_status === 'behind' ? 'warn' : 'bad'}`}>{STATUS_LABEL[n.config_status] ?? n.config_status}</span></td>
                <td>{n.last_error ?? ''}</td><td>{new Date(n.last_seen * 1000).toLocaleTimeString()}</td>
              </tr>
            ))}
            {nodes && nodes.data.length === 0 && <tr><td colSpan={8}>No data-plane node has reported yet.</td></tr>}
          </tbody>
        </table>
      </div>
      <h3>Traffic</h3>
      {trafficError && <p role="alert" class="form-error">{trafficError}</p>}
      {traffic && traffic.sources === 0 && <p>This control plane scrapes no data-plane metrics (it does when a data plane runs in the same process); scrape the nodes' status listeners with Prometheus.</p>}
      {traffic && traffic.sources > 0 && services.length === 0 && <p>Collecting… (a point every {traffic.interval_s} s)</p>}
      {traffic && services.length > 0 && <TrafficSummary traffic={traffic} />}
      {traffic && services.length > 0 && (
        <div class="charts" data-services={services.join(',')}>
          <Chart title="Requests per second" traffic={traffic} pick={(p) => p.rps} unit="req/s" />
          <Chart title="Error rate (5xx)" traffic={traffic} pick={(p) => p.error_rate * 100} unit="%" />
          <Chart title="p99 latency" traffic={traffic} pick={(p) => p.p99_ms} unit="ms" />
        </div>
      )}
    </section>
  );
}
