// response-transformer (reference/kong-compat.md §4.10), headers only: remove → rename → replace
// (only when present) → add (only when absent) → append (always: a repeated header), on every
// response, the gateway's own plugin answers included (Kong's header_filter, no `if_status`).
// Values are literal (Kong's OSS response-transformer has no templates). Names are handled
// lower-case, as the DP keys response headers.
//
// `remove` also drops a header another plugin queued for the response (ctx.responseHeaders: cors,
// correlation-id), which the DP adds after this phase; the other operations see only the upstream's
// (or the exit's) headers.
import type { PluginHandler, ProxyContext } from '../types.ts';
import { splitPair } from '../transformer-fields.ts';
import { responseTransformer, type ResponseTransformerConfig } from './schema.ts';

interface Pair { name: string; value: string }
interface State { remove: string[]; rename: Pair[]; replace: Pair[]; add: Pair[]; append: Pair[] }

const lowerPairs = (entries: string[]): Pair[] => entries.map(splitPair)
  .filter((p) => p.value !== '')
  .map((p) => ({ name: p.name.toLowerCase(), value: p.value }));

export const responseTransformerHandler: PluginHandler<ResponseTransformerConfig, State> = {
  name: responseTransformer.name,
  priority: responseTransformer.priority,
  init(config) {
    return {
      remove: config.remove.headers.map((e) => splitPair(e).name.toLowerCase()),
      rename: lowerPairs(config.rename.headers).map((p) => ({ name: p.name, value: p.value.toLowerCase() })).filter((p) => p.name !== p.value),
      replace: lowerPairs(config.replace.headers),
      add: lowerPairs(config.add.headers),
      append: lowerPairs(config.append.headers),
    };
  },
  response: function responseTransformerResponse(ctx: ProxyContext, _status, h, _config, state) {
    for (const name of state.remove) { delete h[name]; delete ctx.responseHeaders[name]; }
    for (const { name, value: to } of state.rename) {
      const v = h[name];
      if (v === undefined) continue;
      delete h[name];
      h[to] = v;
    }
    for (const { name, value } of state.replace) if (h[name] !== undefined) h[name] = value;
    for (const { name, value } of state.add) if (h[name] === undefined) h[name] = value;
    for (const { name, value } of state.append) {
      const v = h[name];
      h[name] = v === undefined ? value : typeof v === 'string' ? [v, value] : [...v, value];
    }
  },
};
