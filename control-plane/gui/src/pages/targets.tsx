// An upstream's targets with the health its data plane sees, and Kong's healthy/unhealthy overrides.
import { useEffect, useState } from 'preact/hooks';
import { call, enc, get } from '../api.ts';
import { canWrite, useSession } from '../session.ts';
import { EntityForm, type EntityView } from './entities.tsx';

const TARGETS: EntityView = { path: 'targets', title: 'Targets', singular: 'target', columns: ['target', 'weight'] };

export function UpstreamTargets({ upstream }: { upstream: any }) {
  const writable = canWrite(useSession());
  const [targets, setTargets] = useState<any[]>([]);
  const [health, setHealth] = useState<Record<string, any>>({});
  const [adding, setAdding] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  const base = `/upstreams/${enc(upstream.id)}`;
  const load = async () => {
    setTargets((await get(`${base}/targets`)).data);
    try {
      const h = await get(`${base}/health`);
      setHealth(Object.fromEntries((h.data ?? []).map((t: any) => [t.target, t])));
    } catch (e) { setNote((e as Error).message); }
  };
  useEffect(() => { void load(); }, [upstream.id]);
  const mark = async (t: any, state: 'healthy' | 'unhealthy') => {
    try { await call('PUT', `${base}/targets/${enc(t.id)}/${state}`); setNote(`${t.target} marked ${state}`); setTimeout(load, 500); } catch (e) { setNote((e as Error).message); }
  };
  return (
    <section aria-labelledby="targets-title" class="detail">
      <h4 id="targets-title">Targets</h4>
      {note && <p role="status">{note}</p>}
      <table>
        <thead><tr><th scope="col">target</th><th scope="col">weight</th><th scope="col">health</th><th scope="col">breaker</th><th scope="col"><span class="visually-hidden">actions</span></th></tr></thead>
        <tbody>
          {targets.map((t) => {
            const h = health[t.target];
            return (
              <tr key={t.id}>
                <td>{t.target}</td><td>{t.weight}</td>
                <td><span class={`badge ${h?.health === 'HEALTHY' ? 'ok' : h?.health ? 'bad' : ''}`}>{h?.health ?? 'unknown'}</span></td>
                <td>{h?.breaker?.state ?? h?.circuit_breaker ?? ''}</td>
                <td class="row-actions">{writable && <>
                  <button class="outline small" onClick={() => mark(t, 'healthy')}>Mark healthy</button>
                  <button class="outline secondary small" onClick={() => mark(t, 'unhealthy')}>Mark unhealthy</button>
                </>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {writable && (adding
        ? <EntityForm view={TARGETS} basePath={`upstreams/${enc(upstream.id)}/targets`} onDone={(saved) => { setAdding(false); if (saved) void load(); }} />
        : <button onClick={() => setAdding(true)}>New target</button>)}
    </section>
  );
}
