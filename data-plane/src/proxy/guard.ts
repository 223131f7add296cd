import type { ProxyExchange } from './exchange.ts';

/**
 * Runs one step of an exchange from an event or a timer, where a throw would reach the process:
 * it becomes that request's 500 instead (issue 9 item 13). `step` is a prototype method, so no
 * closure is allocated.
 */
export function safely<A extends unknown[]>(x: ProxyExchange, step: (this: ProxyExchange, ...args: A) => void, ...args: A): void {
  try {
    step.apply(x, args);
  } catch (err) {
    x.fail(err);
  }
}
