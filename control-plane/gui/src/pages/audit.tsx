// The audit log (admins and auditors), filtered by the API's own filters, newest first.
import { useEffect, useState } from 'preact/hooks';
import { get, type Page } from '../api.ts';
import { Pager, useOffsets } from '../pager.tsx';

const FILTERS = ['admin', 'entity', 'entity_id', 'method', 'since', 'until'] as const;

export function Audit() {
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [applied, setApplied] = useState<Record<string, string>>({});
  const pages = useOffsets();
  const [page, setPage] = useState<Page<any> | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const q = new URLSearchParams({ size: '25' });
    for (const [k, v] of Object.entries(applied)) if (v.trim()) q.set(k, v.trim());
    if (pages.offset) q.set('offset', pages.offset);
    get(`/audit/requests?${q}`).then((p) => { setPage(p); setError(null); }).catch((e) => setError(e.message));
  }, [applied, pages.offset]);
  return (
    <section aria-labelledby="page-title">
      <h2 id="page-title">Audit log</h2>
      <form class="filters" role="search" onSubmit={(e) => { e.preventDefault(); pages.reset(); setApplied(draft); }}>
        {FILTERS.map((f) => (
          <label key={f}>{f.replace('_', ' ')}
            {f === 'method'
              ? <select value={draft[f] ?? ''} onChange={(e) => setDraft({ ...draft, [f]: (e.target as HTMLSelectElement).value })}><option value="">any</option>{['POST', 'PUT', 'PATCH', 'DELETE'].map((m) => <option key={m}>{m}</option>)}</select>
              : <input type="text" value={draft[f] ?? ''} placeholder={f === 'since' || f === 'until' ? 'seconds since epoch' : ''} onInput={(e) => setDraft({ ...draft, [f]: (e.target as HTMLInputElement).value })} />}
          </label>
        ))}
        <button type="submit">Filter</button>
      </form>
      {error && <p role="alert" class="form-error">{error}</p>}
      <div class="table-wrap">
        <table class="striped" aria-label="Audit entries">
          <thead><tr><th scope="col">#</th><th scope="col">time</th><th scope="col">admin</th><th scope="col">request</th><th scope="col">entity</th><th scope="col">version</th><th scope="col">client</th></tr></thead>
          <tbody>
            {(page?.data ?? []).map((a) => (
              <tr key={a.seq}>
                <td>{a.seq}</td><td>{new Date(a.created_at * 1000).toLocaleString()}</td><td>{a.admin_username ?? '(open)'}</td>
                <td><code>{a.method} {a.path}</code></td><td>{a.entity_type} <code>{String(a.entity_id ?? '').slice(0, 8)}</code></td>
                <td>{a.config_version}</td><td>{a.client_ip}</td>
              </tr>
            ))}
            {page && page.data.length === 0 && <tr><td colSpan={7}>No entries match.</td></tr>}
          </tbody>
        </table>
      </div>
      <Pager pages={pages} nextOffset={page?.offset} labels={['Newer', 'Older']} />
    </section>
  );
}
