// The snapshot decoder's thread (decoder.ts starts it): decodeRequest off the proxy's event loop.
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { DECODER_NICE, decodeRequest, verifyRequest, type DecodeRequest, type VerifyRequest } from './decode-protocol.ts';

// Below the proxy's priority: on Linux a nice value is a thread's own, so when the cores are busy
// the thread serving requests gets the CPU first and a decode waits (it is not urgent: the running
// config keeps serving). Elsewhere, or where it is refused, the thread keeps the process's.
try { setPriority(DECODER_NICE); } catch { /* not permitted here: run at the process's priority */ }

parentPort!.on('message', (req: DecodeRequest | VerifyRequest) => {
  const reply = 'verify' in req ? verifyRequest(req) : decodeRequest(req);
  // The keys and index arrays are moved, not copied (each in an ArrayBuffer of its own).
  const transfer = reply.status === 'decoded' ? Object.values(reply.lists).flatMap((l) => [l.keys, l.ref, l.dropped].flatMap((a) => (a ? [a.buffer as ArrayBuffer] : []))) : [];
  // The payload's memory goes back for the next request (nothing here keeps a view into it).
  if (req.payload.buffer instanceof ArrayBuffer) { reply.spare = req.payload.buffer; transfer.push(reply.spare); }
  parentPort!.postMessage(reply, transfer);
});
