// Decodes snapshots on a worker thread (ARCHITECTURE.md invariant 7: applying a snapshot never
// stalls requests). At 10,000 routes, gunzip + JSON.parse + zod + the hash take ~0.3–0.5 s of CPU;
// here they take none of the proxy's event loop.
//
// Handing the validated snapshot back by structured clone would cost the main thread ~35–65 ms in
// one piece at 10,000 routes, and JSON text ~20 ms; so the worker sends each entity's key (a
// digest of its canonical JSON) and the JSON of only the entities this thread does not already
// hold from the previous snapshot, which it parses in slices. A config write that changes one route
// ships one route; unchanged entities keep their objects, so compiled parts keyed by them are
// reused (compile/).
//
// The thread keeps no state a result depends on (each request says what this thread holds; it caches
// the last snapshot's compressed blocks and the index of the held keys, decode-protocol.ts) and stops after
// DECODER_IDLE_MS without work, giving its heap back: a node whose config is quiet does not keep
// the memory that decoding 10,000 routes took.
import { Worker } from 'node:worker_threads';
import type { Snapshot } from '@portico/shared';
import { SnapshotError, threadPoolCheck, type SignatureCheck } from '@portico/shared';
import { verify } from 'node:crypto';
import { Slicer } from '../compile/slice.ts';
import { decodeRequest, KEY_CHARS, type DecodeReply, type DecodeRequest, type VerifyRequest } from './decode-protocol.ts';

/**
 * How one list changed since the snapshot decoded before (`base`, the list as then assembled):
 * the entities it did not have (`added`, in the list's order) and those it no longer has
 * (`removed`); an entity changed in place is one of each. Kept entities are the same objects.
 */
export interface ListChange { base: readonly object[]; added: object[]; removed: object[] }

/** `changes`: by list name, for each list that changed and was held (unchanged lists are `base` itself). */
export type Decoded = { status: 'decoded'; snapshot: Snapshot; changes: Record<string, ListChange> } | { status: 'ignored'; version: number };

/** How long the decoder's thread stays up without work. */
export const DECODER_IDLE_MS = 30_000;
/**
 * Compressed snapshots up to this size (a few hundred routes) are decoded inline, in a few ms: a
 * small gateway (the all-in-one, a test) never starts the thread and its ~40 MB.
 */
export const INLINE_MAX_BYTES = 4 * 1024;

/**
 * The thread's young generation, capped: a first decode of 10,000 routes parses ~5 MB of JSON into
 * short-lived objects, and V8 grows a thread's young generation to its default cap (48 MB on this
 * machine's 24 GB) for it, then keeps it. At 8 MB the DP's RSS just after that apply read 209–223
 * MB in four runs against 232 and 239 (one DP, its own Postgres and NATS, 2026-12-01), and the
 * decode took no longer (727–915 ms against 851–984): what it parses is short-lived, so a small
 * nursery collects it cheaply. The old generation is left uncapped: a large config must not kill
 * the thread.
 */
const THREAD_OPTIONS = { resourceLimits: { maxYoungGenerationSizeMb: 8 } };

/**
 * Bundles (dist/) start the worker from the .mjs built beside them. Source runs (unit tests under
 * tsx) from its .ts file, through tsx's loader registered in the thread first: Node 20 does not
 * carry a loader given by --import over to a worker's entry module.
 */
function newWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./decode-worker.mjs', import.meta.url), THREAD_OPTIONS);
  const entry = JSON.stringify(new URL('./decode-worker.ts', import.meta.url).href);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return new Worker(`import(${tsx}).then((tsx) => { tsx.register(); return import(${entry}); })`, { ...THREAD_OPTIONS, eval: true });
}

type Pending = { resolve: (r: DecodeReply) => void; reject: (e: Error) => void };

/** The entities of the last snapshot decoded: their keys as sent, and each list as assembled (by list name). */
interface Held { keys: Record<string, Uint8Array>; arrays: Map<string, object[]> }

export class SnapshotDecoder {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private held: Held | null = null;
  /** The thread whose last reply `held` was assembled from, and that reply's id: the keys need not be sent to it. */
  private synced: { worker: Worker; id: number } | null = null;
  /** Memory for the next request's copy of a snapshot, given back by the thread (DecodeReply.spare). */
  private spare: ArrayBuffer | null = null;
  private idle: NodeJS.Timeout | null = null;
  /** Threads started so far (tests: the work left this thread). */
  started = 0;
  /** Requests to the thread that carried the held keys (tests: in step, a write sends none). */
  keysSent = 0;
  /** Requests whose copy of the snapshot went in memory the thread gave back (tests: no new memory per write). */
  memoryReused = 0;

  constructor(private readonly idleMs = DECODER_IDLE_MS, private readonly inlineMaxBytes = INLINE_MAX_BYTES) {}

  /** The worker's thread id, 0 when none runs. */
  get threadId(): number { return this.worker?.threadId ?? 0; }

  /**
   * The validated snapshot in `payload` (gzip-compressed JSON whose signature is checked), or
   * `ignored` when its version is not newer than `newerThan`. Throws SnapshotError when rejected.
   * Calls must not overlap (ConfigState.apply runs one at a time): each builds on the last.
   */
  async decode(payload: Uint8Array, newerThan: number): Promise<Decoded> {
    const held = this.held;
    const inline = payload.byteLength <= this.inlineMaxBytes;
    const synced = !inline && this.synced !== null && this.synced.worker === this.worker ? this.synced.id : null;
    const request = (keys: boolean): [DecodeRequest, ArrayBuffer[]] => {
      // Inline, a copy of its own (the caller may reuse the payload's memory), leaving the thread's spare memory for the next large one.
      const [copy, memory] = inline ? [new Uint8Array(payload), null] : this.copyOf(payload);
      const token = !keys && synced !== null;
      if (!token && held && !inline) this.keysSent++;
      return [{ id: this.nextId++, payload: copy, held: token ? synced : held?.keys ?? null, newerThan }, memory ? [memory] : []];
    };
    this.synced = null;
    let reply: DecodeReply;
    let resent = false;
    if (inline) reply = decodeRequest(request(true)[0]);
    else {
      const worker = this.worker ??= this.start();
      reply = await this.send(...request(false));
      if (reply.status === 'resend') { reply = await this.send(...request(true)); resent = true; }
      if (reply.status === 'decoded' && this.worker === worker) {
        const decoded = await this.assemble(reply, held);
        this.synced = { worker, id: reply.id };
        return { status: 'decoded', ...decoded };
      }
    }
    if (reply.status === 'error') throw new SnapshotError(reply.error);
    if (reply.status === 'resend') throw new SnapshotError('snapshot decoder: the thread asked for the held keys twice');
    if (reply.status === 'verified') throw new SnapshotError('snapshot decoder: the thread answered a decode with a signature check');
    if (reply.status === 'ignored') {
      // Nothing changed on either side: still in step, unless the thread refused the token.
      if (!inline && this.worker && synced !== null && !resent) this.synced = { worker: this.worker, id: synced };
      return { status: 'ignored', version: reply.version };
    }
    return { status: 'decoded', ...await this.assemble(reply, held) };
  }

  /** The snapshot from a reply: held entities by index, fresh ones parsed a chunk per slice. */
  private async assemble(reply: Extract<DecodeReply, { status: 'decoded' }>, held: Held | null): Promise<{ snapshot: Snapshot; changes: Record<string, ListChange> }> {
    const slicer = new Slicer();
    const arrays = new Map<string, object[]>();
    const keys: Record<string, Uint8Array> = {};
    const config: Record<string, object[]> = {};
    const changes: Record<string, ListChange> = {};
    for (const [name, list] of Object.entries(reply.lists)) {
      const before = held?.arrays.get(name);
      if (list.keys === null) {
        // Unchanged: the very array of the last snapshot, so compile/ sees at a glance what it can reuse.
        if (!held || !before || held.keys[name] === undefined) throw new SnapshotError(`snapshot decoder: ${name} refers to a list this thread does not hold`);
        arrays.set(name, before);
        keys[name] = held.keys[name];
        config[name] = before;
        continue;
      }
      const count = list.keys.length / KEY_CHARS;
      const ref = list.ref;
      if (ref && (!before || ref.length !== count)) throw new SnapshotError(`snapshot decoder: ${name} refers to entities this thread does not hold`);
      const added: object[] = [];
      let chunk: object[] = [];
      let next = 0;
      let f = 0;
      const fresh = async (): Promise<object> => {
        if (next === chunk.length) {
          if (f === list.fresh.length) throw new SnapshotError(`snapshot decoder: ${name} is missing entities`);
          if (slicer.due()) await slicer.turn();
          chunk = JSON.parse(list.fresh[f++]) as object[];
          next = 0;
        }
        const entity = chunk[next++];
        added.push(entity);
        return entity;
      };
      const heldAt = (at: number): object => {
        const entity = before?.[at];
        if (entity === undefined) throw new SnapshotError(`snapshot decoder: ${name} refers to an entity this thread does not hold`);
        return entity;
      };
      let out: object[];
      if (ref && count === before!.length) {
        // The common write (an entity changed in place): the last list, copied, with its changed places set.
        out = before!.slice();
        for (let i = 0; i < count; i++) {
          const at = ref[i];
          if (at !== i) out[i] = at >= 0 ? heldAt(at) : await fresh();
          if ((i & 4095) === 4095 && slicer.due()) await slicer.turn();
        }
      } else {
        out = [];
        for (let i = 0; i < count; i++) {
          const at = ref ? ref[i] : -1;
          out.push(at >= 0 ? heldAt(at) : await fresh());
          if ((i & 1023) === 1023 && slicer.due()) await slicer.turn();
        }
      }
      if (next !== chunk.length || f !== list.fresh.length) throw new SnapshotError(`snapshot decoder: ${name} has entities left over`);
      arrays.set(name, out);
      keys[name] = list.keys;
      config[name] = out;
      if (before) {
        const removed: object[] = [];
        if (list.dropped) for (const at of list.dropped) removed.push(heldAt(at));
        else if (ref || before.length) throw new SnapshotError(`snapshot decoder: ${name} does not say which entities it dropped`);
        changes[name] = { base: before, added, removed };
      }
    }
    this.held = { keys, arrays };
    return { snapshot: { version: reply.version, hash: reply.hash, built_at: reply.built_at, config: config as unknown as Snapshot['config'] }, changes };
  }

  /**
   * The DP's check of a snapshot's signature (sign.ts SignatureCheck), on this decoder's thread: the
   * payload is copied into memory the thread gives back, as for a decode, where libuv's thread pool
   * takes a copy of its own made on the event loop (0.7-2.9 ms of it per write at 10,000 routes in
   * profiles on a 2-core VM). A small payload is checked here; should the thread fail, the thread pool checks it.
   */
  readonly checkSignature: SignatureCheck = async (payload, publicKey, signature) => {
    if (payload.byteLength <= this.inlineMaxBytes) return verify(null, payload, publicKey, signature);
    let reply: DecodeReply;
    try {
      const [copy, memory] = this.copyOf(payload);
      reply = await this.send({ id: this.nextId++, payload: copy, verify: { publicKey, signature: new Uint8Array(signature) } }, [memory]);
    } catch {
      return threadPoolCheck(payload, publicKey, signature);
    }
    if (reply.status !== 'verified') throw new SnapshotError(`snapshot decoder: the thread answered a signature check with ${reply.status}`);
    return reply.valid;
  };

  /**
   * A copy of `payload` to move to the thread (a Buffer may be a view into a shared pool), in the
   * memory the thread gave back after its last request when it is large enough: new memory the size
   * of a snapshot (340 KB at 10,000 routes) took ~1 ms of the event loop per write in page faults
   * on a 2-core VM. With the memory to transfer.
   */
  private copyOf(payload: Uint8Array): [Uint8Array, ArrayBuffer] {
    const n = payload.byteLength;
    const reuse = this.spare !== null && this.spare.byteLength >= n;
    if (reuse) this.memoryReused++;
    const memory = reuse ? this.spare! : Buffer.allocUnsafeSlow(Math.ceil(n * 1.25)).buffer as ArrayBuffer;
    this.spare = null;
    const copy = new Uint8Array(memory, 0, n);
    copy.set(payload);
    return [copy, memory];
  }

  private send(req: DecodeRequest | VerifyRequest, transfer: ArrayBuffer[]): Promise<DecodeReply> {
    if (this.idle) { clearTimeout(this.idle); this.idle = null; }
    const w = this.worker ??= this.start();
    return new Promise<DecodeReply>((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      w.ref();
      w.postMessage(req, transfer);
    });
  }

  private start(): Worker {
    const w = newWorker();
    this.started++;
    w.unref();
    w.on('message', (reply: DecodeReply) => {
      if (reply.spare) this.spare = reply.spare;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) {
        w.unref();
        this.idle = setTimeout(() => { void this.close(); }, this.idleMs);
        this.idle.unref();
      }
      p?.resolve(reply);
    });
    // A crashed worker (out of memory on a hostile document, a bug) fails what it held; the next
    // decode starts a new one.
    w.on('error', (err) => this.stopped(w, err));
    w.on('exit', (code) => this.stopped(w, new Error(`exited with code ${code}`)));
    return w;
  }

  private stopped(w: Worker, err: Error): void {
    if (this.worker !== w) return;
    this.worker = null;
    for (const p of this.pending.values()) p.reject(new SnapshotError(`snapshot decoder stopped: ${err.message}`));
    this.pending.clear();
  }

  /** Stops the thread (idle, or node shutdown); a later decode starts a new one. */
  async close(): Promise<void> {
    if (this.idle) { clearTimeout(this.idle); this.idle = null; }
    const w = this.worker;
    if (!w) return;
    this.stopped(w, new Error('closed'));
    await w.terminate();
  }
}
