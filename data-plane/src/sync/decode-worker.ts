// The snapshot decoder's thread (decoder.ts starts it): decodeRequest off the proxy's event loop.
import { parentPort } from 'node:worker_threads';
import { decodeRequest, type DecodeRequest } from './decode-protocol.ts';

parentPort!.on('message', (req: DecodeRequest) => { parentPort!.postMessage(decodeRequest(req)); });
