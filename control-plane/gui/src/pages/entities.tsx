// Lists, search, tags, pagination, and create/edit/delete for every entity with a schema. One
// component serves services, routes, consumers, plugins, upstreams and certificates; what differs
// is in ENTITY_VIEWS and in the detail panels (credentials, targets).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, enc, get, type Page } from '../api.ts';
import { Fields, prune, unplacedErrors, type FieldList, type Values } from '../form.tsx';
import { canWrite, useSession } from '../session.ts';
import { Pager, useOffsets } from '../pager.tsx';
import { ConsumerCredentials } from './credentials.tsx';
import { UpstreamTargets } from './targets.tsx';

export interface EntityView { path: string; title: string; singular: string; columns: string[]; optional?: boolean }

export const ENTITY_VIEWS: EntityView[] = [
  { path: 'services', title: 'Services', singular: 'service', columns: ['name', 'protocol', 'host', 'port', 'path'] },
  { path: 'routes', title: 'Routes', singular: 'route', columns: ['name', 'paths', 'hosts', 'methods', 'service'] },
  { path: 'consumers', title: 'Consumers', singular: 'consumer', columns: ['username', 'custom_id'] },
  { path: 'plugins', title: 'Plugins', singular: 'plugin', columns: ['name', 'service', 'route', 'consumer', 'enabled'] },
  { path: 'upstreams', title: 'Upstreams', singular: 'upstream', columns: ['name', 'algorithm', 'slots'] },
  { path: 'certificates', title: 'Certificates', singular: 'certificate', columns: ['snis', 'cert_digest'], optional: true },
];

const PAGE_SIZE = 20;

export const labelOf = (e: any) => e?.name ?? e?.username ?? e?.id;

function cell(v: unknown): string {
  if (v == null) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object') return (v as any).id ? String((v as any).id).slice(0, 8) : JSON.stringify(v);
  return String(v);
}

/** The schema a form is generated from: the entity's, or for a plugin, that plugin's. */
async function schemaFor(view: EntityView, pluginName?: string): Promise<FieldList> {
  if (view.path !== 'plugins') return (await get(`/schemas/${view.path}`)).fields;
  if (!pluginName) return [];
  const s = (await get(`/schemas/plugins/${enc(pluginName)}`)).fields as FieldList;
  // The plugin entity's own scope fields beside what the plugin schema lists.
  return [
    { service: { type: 'foreign', reference: 'services' } }, { route: { type: 'foreign', reference: 'routes' } },
    ...s, { enabled: { type: 'boolean', default: true } }, { tags: { type: 'set', elements: { type: 'string' } } },
  ];
}

export function EntityForm({ view, existing, onDone, basePath }: { view: EntityView; existing?: any; onDone: (saved?: any) => void; basePath?: string }) {
  const session = useSession();
  const readOnly = !canWrite(session);
  const [pluginName, setPluginName] = useState<string>(existing?.name ?? '');
  const [plugins, setPlugins] = useState<string[]>([]);
  const [schema, setSchema] = useState<FieldList | null>(null);
  const [values, setValues] = useState<Values>(existing ?? {});
  const [errors, setErrors] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => { if (view.path === 'plugins') get('/plugins/enabled').then((r) => setPlugins(r.enabled_plugins)); }, [view.path]);
  useEffect(() => { schemaFor(view, pluginName).then(setSchema).catch((e) => setErrors(e)); }, [view.path, pluginName]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setErrors(null);
    try {
      const body = prune(values, !existing);
      if (view.path === 'plugins') body.name = pluginName;
      for (const k of ['id', 'created_at', 'updated_at']) delete body[k];
      const saved = existing
        ? await call('PATCH', `/${basePath ?? view.path}/${enc(existing.id)}`, body)
        : await call('POST', `/${basePath ?? view.path}`, body);
      onDone(saved);
    } catch (err) {
      setErrors(err instanceof ApiError ? err : new ApiError(0, { message: String(err) }));
    } finally { setBusy(false); }
  };
  const fieldErrors = errors?.body.fields;
  const other = schema ? unplacedErrors(schema, fieldErrors as Record<string, unknown>) : [];
  return (
    <form class="entity-form" onSubmit={submit} aria-label={`${existing ? 'Edit' : 'New'} ${view.singular}`}>
      <h3>{existing ? `${readOnly ? '' : 'Edit '}${view.singular} ${labelOf(existing)}` : `New ${view.singular}`}</h3>
      {view.path === 'plugins' && (
        <div class="field">
          <label for="f-plugin-name">plugin</label>
          <select id="f-plugin-name" value={pluginName} disabled={Boolean(existing) || readOnly} onChange={(e) => { setPluginName((e.target as HTMLSelectElement).value); setValues({}); }}>
            <option value="">choose a plugin…</option>
            {plugins.map((p) => <option key={p} value={p}>{p}</option>)}
          </select>
        </div>
      )}
      {schema && <Fields list={schema} path={[]} values={values} onChange={setValues} errors={fieldErrors} readOnly={readOnly} skip={basePath ? ['consumer', 'upstream'] : []} />}
      {errors && <p role="alert" class="form-error">{errors.body.message}{other.length > 0 && <> — {other.join('; ')}</>}</p>}
      <div class="actions">
        {!readOnly && <button type="submit" aria-busy={busy} disabled={busy || (view.path === 'plugins' && !pluginName)}>{existing ? 'Save' : 'Create'}</button>}
        <button type="button" class="secondary" onClick={() => onDone()}>{readOnly ? 'Close' : 'Cancel'}</button>
      </div>
    </form>
  );
}

export function EntityPage({ view }: { view: EntityView }) {
  const session = useSession();
  const writable = canWrite(session);
  const [page, setPage] = useState<Page<any> | null>(null);
  const pages = useOffsets();
  const [tags, setTags] = useState('');
  const [search, setSearch] = useState('');
  const [editing, setEditing] = useState<any | null | 'new'>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);

  const offset = pages.offset;
  useEffect(() => {
    const q = new URLSearchParams({ size: String(PAGE_SIZE) });
    if (tags.trim()) q.set('tags', tags.trim());
    if (offset) q.set('offset', offset);
    get(`/${view.path}?${q}`).then((p) => { setPage(p); setError(null); }).catch((e) => setError(e.message));
  }, [view.path, tags, offset, reload]);
  useEffect(() => { setEditing(null); pages.reset(); setSearch(''); setTags(''); }, [view.path]);

  const remove = async (e: any) => {
    if (!window.confirm(`Delete ${view.singular} ${labelOf(e)}?`)) return;
    try { await call('DELETE', `/${view.path}/${enc(e.id)}`); setReload((n) => n + 1); } catch (err) { setError((err as Error).message); }
  };
  const needle = search.trim().toLowerCase();
  const rows = (page?.data ?? []).filter((e) => !needle || JSON.stringify(e).toLowerCase().includes(needle));

  return (
    <section aria-labelledby="page-title">
      <header class="page-head">
        <h2 id="page-title">{view.title}</h2>
        {writable && <button onClick={() => setEditing('new')}>New {view.singular}</button>}
      </header>
      <div class="filters" role="search">
        <label>Search <input type="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} placeholder="name, host, id…" /></label>
        <label>Tags <input type="text" value={tags} onChange={(e) => { pages.reset(); setTags((e.target as HTMLInputElement).value); }} placeholder="tag1,tag2 (all) or tag1/tag2 (any)" /></label>
      </div>
      {error && <p role="alert" class="form-error">{error}</p>}
      {editing && (
        <article>
          <EntityForm key={editing === 'new' ? 'new' : editing.id} view={view} existing={editing === 'new' ? undefined : editing}
            onDone={(saved) => { setEditing(null); if (saved) setReload((n) => n + 1); }} />
          {editing !== 'new' && view.path === 'consumers' && <ConsumerCredentials consumer={editing} />}
          {editing !== 'new' && view.path === 'upstreams' && <UpstreamTargets upstream={editing} />}
        </article>
      )}
      <div class="table-wrap">
        <table class="striped">
          <thead><tr>{view.columns.map((c) => <th key={c} scope="col">{c}</th>)}<th scope="col">tags</th><th scope="col"><span class="visually-hidden">actions</span></th></tr></thead>
          <tbody>
            {rows.map((e) => (
              <tr key={e.id}>
                {view.columns.map((c) => <td key={c}>{cell(e[c])}</td>)}
                <td>{(e.tags ?? []).map((t: string) => <mark key={t}>{t}</mark>)}</td>
                <td class="row-actions">
                  <button class="outline" onClick={() => setEditing(e)} aria-label={`${writable ? 'Edit' : 'View'} ${labelOf(e)}`}>{writable ? 'Edit' : 'View'}</button>
                  {writable && <button class="outline secondary" onClick={() => remove(e)} aria-label={`Delete ${labelOf(e)}`}>Delete</button>}
                </td>
              </tr>
            ))}
            {page && rows.length === 0 && <tr><td colSpan={view.columns.length + 2}>No {view.title.toLowerCase()} {needle ? 'match' : 'yet'}.</td></tr>}
          </tbody>
        </table>
      </div>
      <Pager pages={pages} nextOffset={page?.offset} />
    </section>
  );
}
