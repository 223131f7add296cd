// Portico Manager's traffic charts for a split deployment: the CP scrapes the data planes the
// operator lists in PORTICO_GUI_TRAFFIC_SOURCES (their status /metrics) and charts their sum. A
// second CP joins the stack's Postgres and NATS, since the DPs' status ports are known only once
// they run.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import { waitFor } from '../harness/procs.ts';

let stack: Stack;
let cp2: GatewayProcess;
interface Traffic { sources: number; services: Record<string, { requests: number; rps: number }[]> }
const traffic = async (): Promise<Traffic> => (await (await fetch(`${cp2.gui}/gui/traffic`)).json()) as Traffic;
const counted = (t: Traffic) => Object.values(t.services).flat().reduce((n, p) => n + p.requests, 0);

before(async () => {
  stack = await startStack({ dps: 2 });
  cp2 = await startGateway('control-plane', {
    env: {
      DATABASE_URL: stack.pg.url, NATS_URL: stack.nats.url,
      PORTICO_GUI_TRAFFIC_SOURCES: stack.dps.map((d) => `${d.status}/metrics`).join(','),
    },
  });
  await stack.write('POST', '/services', { name: 'echo', url: stack.upstream.url });
  await stack.write('POST', '/services/echo/routes', { name: 'echo-r', paths: ['/echo'] });
});
after(async () => { await cp2?.kill(); cp2?.cleanup(); await stack?.stop(); });

describe('GUI traffic from the data planes an operator lists', () => {
  it('charts the requests both data planes served', async () => {
    assert.equal((await traffic()).sources, 2);
    // The first scrape of a listed source is its baseline (its counters began before this CP).
    await waitFor('a baseline scrape', async () => Object.keys((await traffic()).services).length > 0, 20_000, 250);
    for (const dp of stack.dps) {
      for (let i = 0; i < 10; i++) { const r = await fetch(`${dp.proxy}/echo/x`); assert.equal(r.status, 200); await r.arrayBuffer(); }
    }
    const seen = await waitFor('20 requests in the chart', async () => { const n = counted(await traffic()); return n >= 20 ? n : false; }, 20_000, 250);
    assert.equal(seen, 20, `counted ${seen}, not more than were sent`);
  });
});
