// Config history (issue 12's endpoints): versions with who and what, a diff between any two, and
// rollback after a confirmation that shows what it will change.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, call, get } from '../api.ts';
import { canWrite, useSession } from '../session.ts';

const who = (v: any) => v.admin_username ?? v.admin?.username ?? v.actor?.username ?? v.created_by ?? (typeof v.admin === 'string' ? v.admin : '');
const when = (v: any) => (v.created_at ? new Date(v.created_at * 1000).toLocaleString() : '');

/** A diff as the API gives it: per entity type, what was created, updated and deleted; or text. */
export function Diff({ diff }: { diff: any }) {
  if (typeof diff === 'string') return <pre class="diff">{diff}</pre>;
  const body = diff?.diff ?? diff?.changes ?? diff;
  return <pre class="diff" data-testid="diff">{JSON.stringify(body, null, 2)}</pre>;
}

export function History() {
  const writable = canWrite(useSession());
  const [versions, setVersions] = useState<any[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [a, setA] = useState<number | null>(null);
  const [b, setB] = useState<number | null>(null);
  const [diff, setDiff] = useState<any>(null);
  const [confirm, setConfirm] = useState<{ version: number; diff: any } | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const load = () => get('/config/versions?size=100').then((r) => { setVersions(r.data); setError(null); })
    .catch((e) => setError(e instanceof ApiError && e.status === 404 ? 'This control plane keeps no config history yet.' : e.message));
  useEffect(() => { void load(); }, []);
  useEffect(() => { if (confirm) dialog.current?.showModal(); else dialog.current?.close(); }, [confirm]);
  const latest = versions?.[0]?.version;
  const compare = async () => {
    if (a == null || b == null) return;
    try { setDiff(await get(`/config/versions/${a}/diff/${b}`)); } catch (e) { setError((e as Error).message); }
  };
  const askRollback = async (version: number) => {
    try { setConfirm({ version, diff: await get(`/config/versions/${latest}/diff/${version}`) }); } catch (e) { setError((e as Error).message); }
  };
  const rollback = async () => {
    if (!confirm) return;
    try {
      await call('POST', '/config/rollback', { version: confirm.version });
      setNote(`Rolled back to the content of version ${confirm.version}.`);
      setConfirm(null); await load();
    } catch (e) { setError((e as Error).message); setConfirm(null); }
  };
  return (
    <section aria-labelledby="page-title">
      <h2 id="page-title">Config history</h2>
      {note && <p role="status">{note}</p>}
      {error && <p role="alert" class="form-error">{error}</p>}
      {versions && (
        <>
          <div class="filters">
            <label>From <select aria-label="Diff from version" value={a ?? ''} onChange={(e) => setA(Number((e.target as HTMLSelectElement).value))}><option value="">version…</option>{versions.map((v) => <option key={v.version} value={v.version}>{v.version}</option>)}</select></label>
            <label>To <select aria-label="Diff to version" value={b ?? ''} onChange={(e) => setB(Number((e.target as HTMLSelectElement).value))}><option value="">version…</option>{versions.map((v) => <option key={v.version} value={v.version}>{v.version}</option>)}</select></label>
            <button onClick={compare} disabled={a == null || b == null}>Compare</button>
          </div>
          {diff && <Diff diff={diff} />}
          <div class="table-wrap">
            <table class="striped" aria-label="Config versions">
              <thead><tr><th scope="col">version</th><th scope="col">time</th><th scope="col">who</th><th scope="col">what changed</th><th scope="col">hash</th><th scope="col"><span class="visually-hidden">actions</span></th></tr></thead>
              <tbody>
                {versions.map((v) => (
                  <tr key={v.version}>
                    <td>{v.version}</td><td>{when(v)}</td><td>{who(v)}</td><td>{v.summary ?? v.change_summary ?? ''}</td><td><code>{String(v.hash ?? '').slice(0, 12)}</code></td>
                    <td>{writable && v.version !== latest && <button class="outline" onClick={() => askRollback(v.version)}>Roll back to {v.version}</button>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <dialog ref={dialog} aria-labelledby="rollback-title" onClose={() => setConfirm(null)}>
        {confirm && (
          <article>
            <h3 id="rollback-title">Roll back to version {confirm.version}?</h3>
            <p>This writes a new version whose content equals version {confirm.version}. It changes:</p>
            <Diff diff={confirm.diff} />
            <footer class="actions">
              <button class="secondary" onClick={() => setConfirm(null)}>Cancel</button>
              <button onClick={rollback}>Roll back</button>
            </footer>
          </article>
        )}
      </dialog>
    </section>
  );
}
