// The allocator setting the all-in-one runs with (`npm start`, deploy/Dockerfile, and the test
// harness as they do). glibc keeps memory a process freed for reuse unless the block was mapped on
// its own, and from the second such free on it maps only blocks larger than the largest freed so
// far. The all-in-one's start frees tens of MB in blocks of 32–64 KB (V8's WebAssembly compile of
// the embedded database, among others), which then stay resident: idle RSS read 209–273 MB over
// runs of the same code. With blocks of 32 KB and up mapped on their own, and so given back when
// freed, it read 153–159 MB in three runs (node --import tsx test/bench/memory.ts; 2026-12-01).
// Not for split data planes: their bodies move in 64 KB buffers, each of which would then cost a
// map and an unmap.
/** Environment variables for an all-in-one process; read by glibc at process start, so set by whatever starts it. */
export const ALL_IN_ONE_ENV = { MALLOC_MMAP_THRESHOLD_: '32768' } as const;
