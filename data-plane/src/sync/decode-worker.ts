// The snapshot decoder's thread (decoder.ts is its client): gunzip, JSON.parse, schema validation
// and the hash check run here, off the proxy's event loop. What goes back is compact: every
// entity's key (a digest of its canonical text) and the canonical JSON of only the entities the
// main thread does not hold yet, in chunks it parses one slice at a time. The thread keeps no state
// between requests: what the main thread holds comes with each request.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { decodeCanonical, SnapshotError } from '@portico/shared';
import { DECODE_CHUNK, KEY_CHARS, type DecodeReply, type DecodeRequest, type DecodedList } from './decode-protocol.ts';

const keyOf = (text: string): string => createHash('sha256').update(text).digest('base64').slice(0, KEY_CHARS);

function keySet(keys: string | undefined): Set<string> {
  const set = new Set<string>();
  if (typeof keys === 'string') for (let i = 0; i < keys.length; i += KEY_CHARS) set.add(keys.slice(i, i + KEY_CHARS));
  return set;
}

function decode(req: DecodeRequest): DecodeReply {
  let decoded: ReturnType<typeof decodeCanonical>;
  try {
    decoded = decodeCanonical(req.payload);
  } catch (err) {
    return { id: req.id, status: 'error', error: err instanceof SnapshotError ? err.message : `snapshot could not be decoded: ${(err as Error).message}` };
  }
  const { snapshot, texts } = decoded;
  if (snapshot.version <= req.newerThan) return { id: req.id, status: 'ignored', version: snapshot.version };
  const lists: Record<string, DecodedList> = {};
  for (const [name, list] of Object.entries(texts)) {
    const held = keySet(req.held?.[name]);
    let keyText = '';
    const fresh: string[] = [];
    let chunk: string[] = [];
    for (const text of list) {
      const key = keyOf(text);
      keyText += key;
      if (held.has(key)) continue;
      chunk.push(text);
      if (chunk.length === DECODE_CHUNK) { fresh.push(`[${chunk.join(',')}]`); chunk = []; }
    }
    if (chunk.length) fresh.push(`[${chunk.join(',')}]`);
    lists[name] = { keys: keyText, fresh };
  }
  return { id: req.id, status: 'decoded', version: snapshot.version, hash: snapshot.hash, built_at: snapshot.built_at, lists };
}

parentPort!.on('message', (req: DecodeRequest) => { parentPort!.postMessage(decode(req)); });
