// The snapshot decoder's thread (decoder.ts starts it): decodeRequest off the proxy's event loop.
import { parentPort } from 'node:worker_threads';
import { decodeRequest, type DecodeRequest } from './decode-protocol.ts';

parentPort!.on('message', (req: DecodeRequest) => {
  const reply = decodeRequest(req);
  // The index arrays are moved, not copied.
  const transfer = reply.status === 'decoded' ? Object.values(reply.lists).flatMap((l) => (l.ref ? [l.ref.buffer as ArrayBuffer] : [])) : [];
  parentPort!.postMessage(reply, transfer);
});
