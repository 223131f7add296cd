// The admin API as the page sees it: same origin, under /api (control-plane/src/gui/server.ts).
// The token lives in sessionStorage only (gone with the tab), and travels in the Kong-Admin-Token
// header, never in a URL or a cookie.
const TOKEN_KEY = 'portico.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t: string) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Kong's error body: `fields` mirrors the input's shape, a message at each bad leaf. */
export interface ApiErrorBody { message?: string; fields?: Record<string, unknown>; name?: string }

export class ApiError extends Error {
  constructor(public status: number, public body: ApiErrorBody) { super(body.message ?? `HTTP ${status}`); }
}

export async function call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const t = token.get();
  if (t) headers['Kong-Admin-Token'] = t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const url = path.startsWith('/gui/') ? path : `/api${path}`;
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  const text = await r.text();
  let parsed: any = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { message: text }; }
  if (!r.ok) throw new ApiError(r.status, parsed ?? {});
  return parsed as T;
}

export const get = <T = any>(path: string) => call<T>('GET', path);

export interface Page<T> { data: T[]; next: string | null; offset?: string }

export const enc = encodeURIComponent;
