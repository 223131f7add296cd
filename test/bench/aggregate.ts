// The aggregator's bench row (issue 14): one GET of a 3-leg composition against the same three
// legs called one by one through the gateway, sequentially (what a client without composition
// pays). Legs on a Node upstream that answers after 20 ms (where parallel legs show), and on the
// instant origin (where the gateway's own cost shows). Client-measured latency, medians.
import type { Stack } from '../harness/stack.ts';
import { startUpstream } from '../harness/upstream.ts';

const N = 200;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(url: string): Promise<number> {
  const t = performance.now();
  const r = await fetch(url);
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
  return performance.now() - t;
}

export async function aggregateBench(opts: { stack: Stack; originUrl: string; say: (s: string) => void }): Promise<void> {
  const { stack, say } = opts;
  const slow = await startUpstream();
  const proxy = stack.dps[0].proxy;
  for (const [name, url, query] of [['agg-slow', slow.url, '?delay_ms=20'], ['agg-fast', opts.originUrl, '']] as const) {
    await stack.write('POST', '/services', { name, url });
    await stack.write('POST', `/services/${name}/routes`, { name: `${name}-leg`, paths: [`/${name}-leg`] });
    await stack.write('POST', '/routes', { name: `${name}-home`, paths: [`/${name}-home`] });
    const legs = ['profile', 'orders', 'wallet'].map((leg) => ({ name: leg, service: name, path: `/${leg}`, query: query ? { delay_ms: '20' } : {} }));
    await stack.write('POST', `/routes/${name}-home/plugins`, { name: 'aggregator', config: { legs } });
    const one = ['profile', 'orders', 'wallet'].map((leg) => `${proxy}/${name}-leg/${leg}${query}`);
    for (let i = 0; i < 20; i++) { await timed(`${proxy}/${name}-home`); for (const u of one) await timed(u); }
    const composed: number[] = [];
    const sequential: number[] = [];
    for (let i = 0; i < N; i++) {
      composed.push(await timed(`${proxy}/${name}-home`));
      let sum = 0;
      for (const u of one) sum += await timed(u);
      sequential.push(sum);
    }
    const c = median(composed), s = median(sequential);
    say(`aggregator, 3 legs ${query ? 'of 20 ms' : 'on the instant origin'}: one composed GET p50 ${c.toFixed(2)} ms vs the 3 legs one by one through the gateway p50 ${s.toFixed(2)} ms (× ${(s / c).toFixed(2)} faster; ${N} sequential rounds, client-measured)`);
  }
  await slow.close();
}
