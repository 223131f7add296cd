// Active health-check probes (reference/kong-compat.md §7.3): TCP connect, or an HTTP GET of
// `http_path` with the configured headers, bounded by `timeout`.
import net from 'node:net';
import { request } from 'undici';
import type { Upstream } from '@portico/shared';
import type { Outcome, TargetState } from './balancer.ts';

export async function probeTarget(t: TargetState, u: Upstream): Promise<Outcome> {
  const a = u.healthchecks.active;
  const timeoutMs = Math.max(1, a.timeout * 1000);
  if (a.type === 'tcp') {
    return new Promise((resolve) => {
      const s = net.connect({ host: t.host, port: t.port });
      const timer = setTimeout(() => { s.destroy(); resolve({ kind: 'timeout' }); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve({ kind: 'status', status: a.healthy.http_statuses[0] ?? 200 }); });
      s.once('error', () => { clearTimeout(timer); resolve({ kind: 'tcp' }); });
    });
  }
  const headers: Record<string, string> = { host: u.host_header ?? t.host };
  for (const [k, v] of Object.entries(a.headers ?? {})) headers[k.toLowerCase()] = v.join(', ');
  try {
    const res = await request(`${a.type}://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${a.http_path}`, {
      method: 'GET', headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    });
    await res.body.dump();
    return { kind: 'status', status: res.statusCode };
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    return code.includes('TIMEOUT') ? { kind: 'timeout' } : { kind: 'tcp' };
  }
}
