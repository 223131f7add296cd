// Raw HTTP/1.x over a socket, for requests no client library will send (two Host headers,
// HTTP/0.9 request lines, absolute-form targets, partial bodies, hand-made upgrades).
import http from 'node:http';
import net from 'node:net';

export interface RawOptions {
  /** Resolve once the server sent nothing for this long (default 1 s); a close resolves at once. */
  idleMs?: number;
  /** Written after `data`, after this delay (ms), e.g. to trickle a body. */
  then?: { afterMs: number; data: string | Buffer };
}

/** Sends `data` exactly as given to `base` (http://host:port) and resolves with everything received. */
export function raw(base: string, data: string | Buffer, opts: RawOptions = {}): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(u.port), u.hostname, () => {
      socket.write(data);
      if (opts.then) setTimeout(() => { if (!socket.destroyed) socket.write(opts.then!.data); }, opts.then.afterMs);
    });
    const done = () => { clearTimeout(idle); socket.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); };
    let idle = setTimeout(done, opts.idleMs ?? 1000);
    socket.on('data', (d) => { chunks.push(d); idle.refresh(); });
    socket.on('close', done);
    socket.on('error', (err) => { if (chunks.length) done(); else reject(err); });
  });
}

/** The status code of the first response in `text`, or 0 when there is none. */
export function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}

export interface HttpAnswer { status: number; headers: http.IncomingHttpHeaders; body: string }

/**
 * A plain node:http request (no pooling), so Host and the other headers are exactly what the test
 * says: fetch rewrites or refuses some.
 */
export function httpRequest(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<HttpAnswer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const r = http.request({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}
