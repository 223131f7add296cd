// Traffic per service for Portico Manager's overview charts. The CP keeps no traffic data of its
// own: it scrapes the Prometheus `/metrics` of the status listeners it knows (the all-in-one's
// embedded DP), every few seconds, and keeps the last minutes of per-service rates in memory.
// Reads Kong's names (issue 13: `kong_http_requests_total{service,code}`,
// `kong_request_latency_ms_bucket{service,le}`) and falls back to the node total
// (`portico_http_requests_total`) where those are not exported yet, as one series named `*`.
import { getBytes, type Logger } from '@portico/shared';

export const SCRAPE_INTERVAL_MS = 5_000;
/** How much history the charts get: 10 minutes at one point per scrape. */
const KEEP_POINTS = 120;
const SCRAPE_TIMEOUT_MS = 2_000;
/**
 * A scrape's largest answer: a DP's exposition with every flag on is ~5 MB per 1,000 routes counted;
 * a larger answer (or one that never ends) counts as no answer, and the CP's memory stays bounded.
 */
export const SCRAPE_MAX_BYTES = 64 * 1024 * 1024;
const ALL = '*';

/** Cumulative counters per service at one scrape, summed over the nodes scraped. */
export interface Totals {
  requests: Map<string, number>;
  errors: Map<string, number>;
  /** `le` bound → cumulative count, per service. */
  latency: Map<string, Map<number, number>>;
}

/** One chart point: `requests` is the count since the previous point, `rps` that count over the time between them. */
export interface Point { t: number; requests: number; rps: number; error_rate: number; p99_ms: number | null }

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

interface Sample { name: string; labels: Record<string, string>; value: number }

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
/** A label value as the unrolled loop `[^"\\]*(?:\\.[^"\\]*)*`: an alternation per character recursed per character in V8 and overflowed the stack on a 10 MB value. */
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*(?:\\.[^"\\]*)*)"/g;

/**
 * The samples of a text exposition (Prometheus text format 0.0.4). Hand-written: the npm parser
 * tried (parse-prometheus-text-format 1.1.1) drops the labels of histogram series, which are the
 * per-service latencies this needs; only sample lines matter here, HELP/TYPE comments do not.
 */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE_RE.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value) && m[3] !== '+Inf') continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL_RE)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value });
  }
  return out;
}

/** Folds one node's exposition text into the totals. */
export function readExposition(text: string, into: Totals): void {
  const samples = parseSamples(text);
  const hasKong = samples.some((s) => s.name === 'kong_http_requests_total');
  for (const s of samples) {
    const service = s.labels.service || ALL;
    if (s.name === 'kong_http_requests_total') {
      add(into.requests, service, s.value);
      if (Number(s.labels.code) >= 500) add(into.errors, service, s.value);
    } else if (s.name === 'portico_http_requests_total' && !hasKong) {
      add(into.requests, ALL, s.value);
    } else if (s.name === 'kong_request_latency_ms_bucket') {
      const buckets = into.latency.get(service) ?? new Map<number, number>();
      const bound = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + s.value);
      into.latency.set(service, buckets);
    }
  }
}

export const emptyTotals = (): Totals => ({ requests: new Map(), errors: new Map(), latency: new Map() });

/** The 99th percentile of the requests a histogram's gains count (bound → requests at or under it): the bucket bound that holds it. */
export function p99Of(gains: Map<number, number> | undefined): number | null {
  if (!gains) return null;
  const bounds = [...gains.keys()].sort((a, b) => a - b);
  const total = gains.get(bounds[bounds.length - 1]) ?? 0;
  if (total <= 0) return null;
  const i = bounds.findIndex((b) => gains.get(b)! >= total * 0.99);
  const bound = bounds[i];
  // Above the last finite bucket the histogram cannot say more than "at least the last bound".
  return Number.isFinite(bound) ? bound : bounds[i - 1] ?? null;
}

/** What a counter gained between two scrapes; a counter that went down was reset (a restart) and counts from zero. */
const gained = (before: number, after: number) => (after >= before ? after - before : after);

/** What one node's counters gained between two of its scrapes, added into `into`. */
export function addGains(prev: Totals, next: Totals, into: Totals): Totals {
  for (const [service, n] of next.requests) add(into.requests, service, gained(prev.requests.get(service) ?? 0, n));
  for (const [service, n] of next.errors) add(into.errors, service, gained(prev.errors.get(service) ?? 0, n));
  for (const [service, buckets] of next.latency) {
    const before = prev.latency.get(service);
    const sum = into.latency.get(service) ?? new Map<number, number>();
    for (const [bound, n] of buckets) sum.set(bound, (sum.get(bound) ?? 0) + gained(before?.get(bound) ?? 0, n));
    into.latency.set(service, sum);
  }
  return into;
}

/** One point per service from what the nodes' counters gained over `seconds`. */
export function pointsOf(gains: Totals, seconds: number, t: number): Map<string, Point> {
  const out = new Map<string, Point>();
  for (const [service, reqs] of gains.requests) {
    const errs = gains.errors.get(service) ?? 0;
    out.set(service, { t, requests: reqs, rps: reqs / seconds, error_rate: reqs ? errs / reqs : 0, p99_ms: p99Of(gains.latency.get(service)) });
  }
  return out;
}

export class TrafficHistory {
  private series = new Map<string, Point[]>();
  /** Each source's counters at its last scrape that answered: a node is compared only with itself. */
  private last = new Map<string, Totals>();
  private lastAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  /**
   * `fromZero`: the sources are the embedded DP, started with this process, so their counters begin
   * at zero now and the first scrape already yields a point; other sources' first scrape is the baseline.
   */
  constructor(private sources: string[], private log: Logger, private fromZero = false) {}

  start(): void {
    if (!this.sources.length) return;
    if (this.fromZero) {
      this.lastAt = Date.now();
      for (const url of this.sources) this.last.set(url, emptyTotals());
    }
    void this.scrape();
    this.timer = setInterval(() => void this.scrape(), SCRAPE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void { if (this.timer) clearInterval(this.timer); }

  /**
   * One round over the sources. A source that does not answer keeps its last counters, so what it
   * served meanwhile shows at its next answer, and one node missing a round is not read as every
   * counter of the sum going down (a reset).
   */
  async scrape(): Promise<void> {
    const gains = emptyTotals();
    let compared = 0;
    await Promise.all(this.sources.map(async (url) => {
      try {
        const text = (await getBytes(url, SCRAPE_TIMEOUT_MS, SCRAPE_MAX_BYTES)).toString('utf8');
        const totals = emptyTotals();
        readExposition(text, totals);
        const prev = this.last.get(url);
        if (prev) { addGains(prev, totals, gains); compared++; }
        this.last.set(url, totals);
      } catch (err) {
        this.log.debug({ err, url }, 'metrics scrape failed');
      }
    }));
    const at = Date.now();
    if (compared && this.lastAt !== null) {
      for (const [service, p] of pointsOf(gains, (at - this.lastAt) / 1000, Math.round(at / 1000))) {
        const list = this.series.get(service) ?? [];
        list.push(p);
        if (list.length > KEEP_POINTS) list.shift();
        this.series.set(service, list);
      }
    }
    if (this.last.size) this.lastAt = at;
  }

  /** What the overview draws: per service, the points of the last minutes. */
  view() {
    return { interval_s: SCRAPE_INTERVAL_MS / 1000, sources: this.sources.length, services: Object.fromEntries(this.series) };
  }
}
