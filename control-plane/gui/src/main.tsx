// Portico Manager: sign in with an admin token, then the pages the role may use.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import '@picocss/pico/css/pico.min.css';
import './app.css';
import { ApiError, get, token } from './api.ts';
import { canAudit, canConfig, SessionContext, type Session } from './session.ts';
import { EntityPage, ENTITY_VIEWS } from './pages/entities.tsx';
import { Overview } from './pages/overview.tsx';
import { History } from './pages/history.tsx';
import { Audit } from './pages/audit.tsx';

const THEME_KEY = 'portico.theme';
type Theme = 'light' | 'dark';

function useHash(): string {
  const [hash, setHash] = useState(location.hash.slice(1) || 'overview');
  useEffect(() => {
    const on = () => setHash(location.hash.slice(1) || 'overview');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function useTheme(): [Theme, () => void] {
  const initial = (localStorage.getItem(THEME_KEY) as Theme | null) ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  const [theme, setTheme] = useState<Theme>(initial);
  useEffect(() => { document.documentElement.dataset.theme = theme; localStorage.setItem(THEME_KEY, theme); }, [theme]);
  return [theme, () => setTheme(theme === 'dark' ? 'light' : 'dark')];
}

/** Who a token belongs to; with authentication off (loopback, no admins) the page acts as admin. */
async function whoAmI(): Promise<Session> {
  const info = await get('/userinfo');
  return info.admin ? { username: info.admin.username, role: info.admin.role } : { username: '(no authentication)', role: 'admin' };
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    token.set(value.trim());
    try { onSignedIn(await whoAmI()); } catch (err) {
      token.clear();
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <main class="container signin">
      <article>
        <h1>Portico Manager</h1>
        <form onSubmit={submit}>
          <label for="token">Admin token</label>
          <input id="token" type="password" autoComplete="off" required value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} aria-invalid={error ? true : undefined} aria-describedby={error ? 'token-error' : undefined} />
          {error && <small id="token-error" class="field-error" role="alert">{error}</small>}
          <button type="submit">Sign in</button>
        </form>
        <p><small>The token stays in this tab only (sessionStorage) and is sent to this server's /api in a header.</small></p>
      </article>
    </main>
  );
}

/** Entity pages whose entity this control plane has (certificates only once they exist). */
function useEntityViews(session: Session | null) {
  const [views, setViews] = useState(ENTITY_VIEWS.filter((v) => !v.optional));
  useEffect(() => {
    if (!session || !canConfig(session)) return;
    Promise.all(ENTITY_VIEWS.map((v) => (v.optional ? get(`/schemas/${v.path}`).then(() => true, () => false) : Promise.resolve(true))))
      .then((have) => setViews(ENTITY_VIEWS.filter((_, i) => have[i])));
  }, [session]);
  return views;
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const views = useEntityViews(session);
  const [checked, setChecked] = useState(false);
  const [theme, toggleTheme] = useTheme();
  const hash = useHash();
  useEffect(() => { whoAmI().then(setSession).catch(() => token.clear()).finally(() => setChecked(true)); }, []);
  if (!checked) return null;
  if (!session) return <SignIn onSignedIn={setSession} />;
  const pages: Array<[string, string]> = [
    ...(canConfig(session) ? [['overview', 'Overview'] as [string, string], ...views.map((v) => [v.path, v.title] as [string, string]), ['history', 'Config history'] as [string, string]] : []),
    ...(canAudit(session) ? [['audit', 'Audit log'] as [string, string]] : []),
  ];
  const current = pages.some(([p]) => p === hash) ? hash : pages[0][0];
  const view = views.find((v) => v.path === current);
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#content">Skip to content</a>
      <header class="topbar container-fluid">
        <nav>
          <ul><li><strong>Portico Manager</strong></li></ul>
          <ul>
            <li><span class="who">{session.username} · <span data-testid="role">{session.role}</span></span></li>
            <li><button class="outline secondary small" onClick={toggleTheme} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>{theme === 'dark' ? 'Light' : 'Dark'}</button></li>
            <li><button class="outline small" onClick={() => { token.clear(); setSession(null); }}>Sign out</button></li>
          </ul>
        </nav>
      </header>
      <div class="layout container-fluid">
        <nav class="side" aria-label="Sections">
          <ul>{pages.map(([p, title]) => <li key={p}><a href={`#${p}`} aria-current={p === current ? 'page' : undefined}>{title}</a></li>)}</ul>
        </nav>
        <main id="content" tabIndex={-1}>
          {current === 'overview' && <Overview />}
          {view && <EntityPage view={view} />}
          {current === 'history' && <History />}
          {current === 'audit' && <Audit />}
        </main>
      </div>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
