// The CP below the proxy's priority (PORTICO_CP_NICE). A config build is not urgent: the running
// config keeps serving until it lands. On a machine the CP shares with data planes (one box, a
// small cluster, CI), a build at the proxy's priority took most of the cores in the ~50 ms after each
// write: on the apply bench (2 cores, 10,000 routes, a write a second) proxy p99 went from 1.56 ms
// idle to 4.21 ms writing (× 2.69); with the CP at nice 10, × 1.80 and × 2.02 (test/bench/RESULTS.md).
// On a machine of its own it changes nothing.
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Raises this process's nice value to `nice` (never lowers it: that needs privileges, and someone
 * may have started it nicer on purpose). On Linux a nice value is per thread, so every thread that
 * exists now is set (V8's and libuv's start before this runs); threads started later inherit the
 * main thread's. A thread that ends meanwhile is skipped. Returns the threads set and, if some could
 * not be, the first reason.
 */
export function lowerPriority(nice: number): { threads: number; error?: string } {
  if (nice === 0) return { threads: 0 };
  let tids: number[];
  try { tids = readdirSync('/proc/self/task').map(Number); } catch { tids = [0]; }
  let threads = 0;
  let error: string | undefined;
  for (const tid of tids) {
    try {
      if (getPriority(tid) < nice) { setPriority(tid, nice); threads++; }
    } catch (err) {
      // ESRCH: the thread ended between the listing and here.
      const e = err as Error & { code?: string; info?: { code?: string } };
      if (e.info?.code !== 'ESRCH' && e.code !== 'ESRCH') error ??= e.message;
    }
  }
  return error === undefined ? { threads } : { threads, error };
}
