// Runs the access phase of a route's chain: synchronously while handlers answer synchronously,
// continuing asynchronously from the first handler that returns a promise.
import type { AccessResult, Exit, PluginEnv, ProxyContext } from '@portico/shared/plugins/handlers';
import { PluginChains, type PluginSlot } from './compile.ts';

export function runAccess(slots: PluginSlot[], ctx: ProxyContext, env: PluginEnv, from = 0): AccessResult | Promise<AccessResult> {
  for (let i = from; i < slots.length; i++) {
    const inst = PluginChains.pick(slots[i], ctx.route, ctx.consumer?.id ?? null);
    if (!inst?.handler.access) continue;
    const r = inst.handler.access(ctx, inst.config, inst.state, env);
    if (r instanceof Promise) return r.then((res) => (res ? res : runAccess(slots, ctx, env, i + 1)));
    if (r) return r;
  }
  return undefined;
}

export function runResponse(slots: PluginSlot[], ctx: ProxyContext, env: PluginEnv, status: number, headers: Record<string, string | string[]>): void {
  for (const slot of slots) {
    const inst = PluginChains.pick(slot, ctx.route, ctx.consumer?.id ?? null);
    inst?.handler.response?.(ctx, status, headers, inst.config, inst.state, env);
  }
}

export function runLog(slots: PluginSlot[], ctx: ProxyContext, env: PluginEnv, status: number): void {
  for (const slot of slots) {
    const inst = PluginChains.pick(slot, ctx.route, ctx.consumer?.id ?? null);
    if (!inst?.handler.log) continue;
    try { inst.handler.log(ctx, status, inst.config, inst.state, env); } catch (err) { env.log.error({ err, plugin: slot.name }, 'log phase failed'); }
  }
}

export const isMessageExit = (e: Exit): e is Extract<Exit, { message: string }> => 'message' in e;

/** The smallest request-body limit among the plugins that run for this request (Infinity: none). */
export function bodyLimit(slots: PluginSlot[], ctx: ProxyContext): number {
  let limit = Infinity;
  for (const slot of slots) {
    const inst = PluginChains.pick(slot, ctx.route, ctx.consumer?.id ?? null);
    const l = inst?.handler.requestBodyLimit?.(inst.config, inst.state);
    if (l != null && l < limit) limit = l;
  }
  return limit;
}
