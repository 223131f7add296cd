// The HTTP port plugins use for control traffic (JWKS, OIDC discovery): undici, bounded in time.
import { request } from 'undici';

const MAX_DOCUMENT_BYTES = 1024 * 1024;

export async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await request(url, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers: { accept: 'application/json' } });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`GET ${url} answered ${res.statusCode}`);
  }
  const text = await res.body.text();
  if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`GET ${url}: document larger than ${MAX_DOCUMENT_BYTES} bytes`);
  return JSON.parse(text);
}
