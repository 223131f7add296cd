// Runs the access phase of a route's chain: synchronously while handlers answer synchronously,
// continuing asynchronously from the first handler that returns a promise.
import type { AccessResult, Exit, JsonBody, PluginEnv, ProxyContext, RequestBody } from '@portico/shared/plugins/handlers';
import { PluginChains, type PluginInstance, type PluginSlot } from './compile.ts';

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

/** The body-phase plugins of one request (the configs that apply once the consumer is known). */
export interface BodyPlan {
  request: PluginInstance[];
  /** 'form' when some request plugin also takes urlencoded and multipart bodies. */
  requestKinds: 'json' | 'form';
  requestCap: number;
  /** Some request plugin refuses bodies it cannot read (BodyNeeds.strict) rather than let them stream. */
  requestStrict: boolean;
  response: PluginInstance[];
  responseCap: number;
}

/** This request's body plan, or null when no plugin that applies needs a body. */
export function bodyPlan(slots: PluginSlot[], ctx: ProxyContext): BodyPlan | null {
  let plan: BodyPlan | null = null;
  for (const slot of slots) {
    const inst = PluginChains.pick(slot, ctx.route, ctx.consumer?.id ?? null);
    const phase = inst?.handler.body;
    if (!phase) continue;
    const needs = phase.needs(inst!.config, inst!.state);
    if (needs.request === null && !needs.response) continue;
    plan ??= { request: [], requestKinds: 'json', requestCap: Infinity, requestStrict: false, response: [], responseCap: Infinity };
    if (needs.request !== null && phase.request) {
      plan.request.push(inst!);
      if (needs.request === 'form') plan.requestKinds = 'form';
      if (needs.strict) plan.requestStrict = true;
      plan.requestCap = Math.min(plan.requestCap, needs.maxBytes);
    }
    if (needs.response && phase.response) {
      plan.response.push(inst!);
      plan.responseCap = Math.min(plan.responseCap, needs.maxBytes);
    }
  }
  return plan;
}

/** The request body phase, in chain order: true when some plugin changed the body, or the first Exit. */
export function runRequestBody(plan: BodyPlan, ctx: ProxyContext, env: PluginEnv, body: RequestBody): boolean | Exit {
  let changed = false;
  for (const inst of plan.request) {
    const r = inst.handler.body!.request!(ctx, body, inst.config, inst.state, env);
    if (r === true) changed = true;
    else if (r !== false) return r;
  }
  return changed;
}

/** The response body phase, in chain order: true when some plugin changed the body. */
export function runResponseBody(plan: BodyPlan, ctx: ProxyContext, env: PluginEnv, status: number, headers: Record<string, string | string[]>, body: JsonBody): boolean {
  let changed = false;
  for (const inst of plan.response) if (inst.handler.body!.response!(ctx, status, headers, body, inst.config, inst.state, env)) changed = true;
  return changed;
}
