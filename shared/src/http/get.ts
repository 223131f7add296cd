// Bounded HTTP GETs for control traffic: plugins' JWKS, OIDC discovery and CRLs on a DP, and the
// CP's scrapes of DP metrics for Portico Manager. undici, bounded in time and size.
import { request } from 'undici';

const MAX_DOCUMENT_BYTES = 1024 * 1024;

/**
 * GET `url`; the body, read only up to `maxBytes` (a longer one is an error, its connection closed),
 * all within `timeoutMs` (a server trickling bytes does not hold the caller longer).
 */
export async function getBytes(url: string, timeoutMs: number, maxBytes: number, accept = '*/*'): Promise<Buffer> {
  const res = await request(url, { method: 'GET', signal: AbortSignal.timeout(timeoutMs), headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers: { accept } });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`GET ${url} answered ${res.statusCode}`);
  }
  const tooLarge = new Error(`GET ${url}: document larger than ${maxBytes} bytes`);
  if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
    res.body.on('error', () => {}).destroy(); // close the connection; the caller gets tooLarge
    throw tooLarge;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge; // leaving the loop destroys the body
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  return JSON.parse((await getBytes(url, timeoutMs, MAX_DOCUMENT_BYTES, 'application/json')).toString('utf8'));
}
