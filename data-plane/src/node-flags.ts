// The Node flags a proxying process runs with (cluster/primary.ts passes them to its workers).
/**
 * Node flags for a process that proxies: V8's memory reducer off. When allocation slows (a node
 * serving a few hundred requests a second looks idle to it) the reducer runs up to three full
 * mark-compact collections in a row to give heap back; at 10,000 routes each held the event loop
 * 5-25 ms, idle or not (apply bench, --trace-gc: 4 full collections of the proxy's heap in 30 s
 * with it, none or one without; 47 collections of every kind against 15). The heap then stays at
 * its high-water mark: a 10,000-route DP's quiet RSS was ~180 MB instead of ~170. Workers get them
 * from cluster/primary.ts; a one-process node from its command line (`npm run data-plane`, deploy/kubernetes).
 */
export const PROXY_NODE_FLAGS = ['--no-memory-reducer'] as const;

/** `execArgv` with PROXY_NODE_FLAGS added (once). */
export function withProxyFlags(execArgv: readonly string[]): string[] {
  return [...execArgv, ...PROXY_NODE_FLAGS.filter((f) => !execArgv.includes(f))];
}
