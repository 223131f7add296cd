// Upstream path construction, path_handling v0 (reference/kong-compat.md §3.4).

/**
 * @param servicePath service.path (null → "/")
 * @param matched     what the route matched (prefix or regex text); '' when the route has no path
 * @param path        the normalized request path
 */
export function upstreamPath(servicePath: string | null, matched: string, path: string, stripPath: boolean): string {
  const S = servicePath ?? '/';
  if (!stripPath) {
    if (S.endsWith('/')) return S + path.slice(1);
    return path === '/' ? S : S + path;
  }
  let rest = path.slice(matched.length);
  if (rest.startsWith('./')) rest = rest.slice(2);
  else if (rest.startsWith('../')) rest = rest.slice(3);
  else if (rest === '.' || rest === '..') rest = '';
  if (S.endsWith('/')) {
    if (rest === '') return path.endsWith('/') || S === '/' ? S : S.slice(0, -1);
    return rest.startsWith('/') ? S.slice(0, -1) + rest : S + rest;
  }
  if (rest === '') return path.endsWith('/') && path !== '/' ? S + '/' : S;
  return rest.startsWith('/') ? S + rest : S + '/' + rest;
}
