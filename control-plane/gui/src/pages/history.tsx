// Config history (issue 12's endpoints): versions with who and what, a diff between any two, and
// rollback after a confirmation that shows what it will change.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, call, get } from '../api.ts';
import { canWrite, useSession } from '../session.ts';

// Shapes from issue 12 (control-plane/src/admin/config-routes.ts): a version is
// {version, hash, built_at (ms), size_bytes, changed_by: string[] | null, summary}; a diff is
// {from, to, summary, changes: {<entity type>: {created, updated, deleted}}}.
const who = (v: any) => (v.changed_by ?? []).join(', ');
const when = (v: any) => (v.built_at ? new Date(v.built_at).toLocaleString() : '');

/** Field names whose values differ between two versions of an entity. */
function changedFields(before: any, after: any): string[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  return [...keys].filter((k) => k !== 'updated_at' && JSON.stringify(before?.[k]) !== JSON.stringify(after?.[k]));
}

/** A diff as issue 12's API gives it: per entity type, what was created, updated and deleted. */
export function Diff({ diff }: { diff: any }) {
  const changes = (diff?.changes ?? {}) as Record<string, { created?: any[]; updated?: any[]; deleted?: any[] }>;
  const types = Object.keys(changes);
  return (
    <div class="diff" data-testid="diff">
      <p><strong>{diff?.summary ?? ''}</strong></p>
      {types.length === 0 && <p>No differences.</p>}
      <ul>
        {types.flatMap((t) => [
          ...(changes[t].created ?? []).map((e) => <li key={`c${e.id}`} class="add">+ {t} {e.name ?? e.id}</li>),
          ...(changes[t].updated ?? []).map((e) => <li key={`u${e.id}`} class="mod">~ {t} {e.name ?? e.id}: {changedFields(e.before, e.after).map((f) => (
            <span key={f}> <code>{f}</code> {JSON.stringify(e.before?.[f])} → {JSON.stringify(e.after?.[f])}</span>))}</li>),
          ...(changes[t].deleted ?? []).map((e) => <li key={`d${e.id}`} class="del">− {t} {e.name ?? e.id}</li>),
        ])}
      </ul>
    </div>
  );
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
      const r = await call('POST', '/config/rollback', { version: confirm.version });
      setNote(r.version ? `Rolled back: version ${r.version} holds the content of version ${confirm.version}.` : `Nothing to roll back: the config already equals version ${confirm.version}.`);
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
                    <td>{v.version}</td><td>{when(v)}</td><td>{who(v)}</td><td>{v.summary ?? ''}</td><td><code>{String(v.hash ?? '').slice(0, 12)}</code></td>
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
