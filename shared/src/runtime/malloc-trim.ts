// Gives the memory a process freed back to the system, now and then (glibc's malloc_trim(0)).
//
// glibc keeps freed memory for reuse, and after the first large free it raises the size from which
// it maps blocks on their own, so what a burst of work freed stays resident: a start (compiling the
// embedded database, reading its catalog), moving large bodies, a config write at many routes.
// malloc_trim(0) returns the free pages inside the arenas too (madvise), not only the top of each;
// it costs 3–15 ms per call here, on koffi's thread rather than the event loop. Measured on the
// all-in-one (2026-12-01; node --import tsx test/bench/memory.ts): 210 MB after moving 256 MB of
// bodies, 159 MB 35 s later; idle after start 158–194 MB against 163–206 MB without it (3 runs each).
// The settings tried instead cost more than they saved (MALLOC_MMAP_THRESHOLD_=32768: start 2×,
// admin writes 3× slower) or gave back less (MALLOC_TRIM_THRESHOLD_=0); see test/bench/RESULTS.md.
//
// koffi is the FFI of the field (prebuilt for each platform, no compiler needed); where it or
// malloc_trim is missing (musl, macOS, Windows) this is a no-op, said once at debug level.
import { createRequire } from 'node:module';
import type { Logger } from './logger.ts';

export interface MallocTrimOptions {
  /** The first call, after start: once start's garbage is collected (V8's memory reducer acts after ~8 s idle). */
  firstMs?: number;
  /** Then every this often: config applies and large bodies free memory in bursts too. */
  everyMs?: number;
}

export interface MallocTrim {
  /** Calls malloc_trim(0) off the event loop; resolves to whether it ran. */
  trimNow(): Promise<boolean>;
  stop(): void;
}

type TrimFn = { async: (pad: number, done: (err: unknown, released: number) => void) => void };

let loaded: TrimFn | null | undefined;

/** malloc_trim from the C library, or null where there is none to call. */
function loadTrim(log: Logger): TrimFn | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') return loaded;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    loaded = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as unknown as TrimFn;
  } catch (err) {
    log.debug({ err }, 'malloc_trim is not available here; freed memory stays with the allocator');
  }
  return loaded;
}

export function startMallocTrim(log: Logger, opts: MallocTrimOptions = {}): MallocTrim {
  const trim = loadTrim(log);
  let running: Promise<boolean> | null = null;
  const trimNow = (): Promise<boolean> => {
    if (!trim) return Promise.resolve(false);
    // One call at a time: a second would only wait on the arena locks the first holds.
    running ??= new Promise<boolean>((resolve) => {
      trim.async(0, (err) => {
        running = null;
        if (err) log.debug({ err }, 'malloc_trim failed');
        resolve(!err);
      });
    });
    return running;
  };
  const timers: NodeJS.Timeout[] = [];
  if (trim) {
    const first = setTimeout(() => {
      void trimNow();
      const every = setInterval(() => void trimNow(), opts.everyMs ?? 30_000);
      every.unref();
      timers.push(every);
    }, opts.firstMs ?? 10_000);
    first.unref();
    timers.push(first);
  }
  return { trimNow, stop: () => { for (const t of timers) clearTimeout(t); } };
}
