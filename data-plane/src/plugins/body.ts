// The body phase's byte work (shared/src/plugins/types.ts, BodyPhase): which bodies may be parsed,
// parsing and serializing a request body (JSON, form urlencoded, multipart), and decoding a
// compressed response body. Pure functions over buffers, so they are unit-tested without sockets.
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { isJsonType, mediaType, type BodySkipReason, type FormFields, type RawPart, type RequestBody } from '@portico/shared/plugins/handlers';

export { isJsonType, mediaType };

const FORM = 'application/x-www-form-urlencoded';
const MULTIPART = 'multipart/form-data';

/**
 * Parses a request body for the body phase, or says why it is left alone. `kinds` is what the
 * route's plugins accept: 'json' alone, or 'form' for JSON, urlencoded and multipart. An empty
 * JSON body is `{}` (Kong's request-transformer adds fields to it).
 */
export function parseRequestBody(buf: Buffer | null, contentType: string | string[] | undefined, kinds: 'json' | 'form'): RequestBody | BodySkipReason {
  const media = mediaType(contentType);
  if (isJsonType(media)) {
    if (buf === null || buf.length === 0) return { kind: 'json', value: {} };
    try { return { kind: 'json', value: JSON.parse(buf.toString('utf8')) }; } catch { return 'invalid-json'; }
  }
  if (kinds === 'json') return 'not-json';
  if (media === FORM) return { kind: 'form', fields: parseForm(buf === null ? '' : buf.toString('utf8')) };
  if (media === MULTIPART) {
    const boundary = boundaryOf(Array.isArray(contentType) ? contentType[0] : contentType!);
    if (boundary === null) return 'not-json';
    const parsed = parseMultipart(buf ?? Buffer.alloc(0), boundary);
    return parsed === null ? 'not-json' : { kind: 'multipart', boundary, ...parsed };
  }
  return 'not-json';
}

/** The body's bytes after a plugin changed it, in its own format. */
export function serializeRequestBody(body: RequestBody): Buffer {
  switch (body.kind) {
    case 'json': return Buffer.from(JSON.stringify(body.value));
    case 'form': return Buffer.from(formString(body.fields));
    case 'multipart': return serializeMultipart(body.fields, body.files, body.boundary);
  }
}

function parseForm(s: string): FormFields {
  const form: FormFields = {};
  for (const [k, v] of new URLSearchParams(s)) addField(form, k, v);
  return form;
}

function addField(form: FormFields, k: string, v: string): void {
  const prev = form[k];
  form[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
}

function formString(fields: FormFields): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) p.append(k, one);
  return p.toString();
}

const BOUNDARY = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i;
function boundaryOf(contentType: string): string | null {
  const m = BOUNDARY.exec(contentType);
  return m ? (m[1] ?? m[2]) : null;
}

const NAME = /\bname="([^"]*)"/i;
const FILENAME = /\bfilename\*?=/i;
const CONTENT_TYPE_LINE = /^content-type:/im;

/**
 * RFC 7578 multipart/form-data, whole body in memory (the body phase has capped it). Parts without
 * a filename or content type are fields the transformers edit; the others are kept byte for byte.
 * Hand-written: the streaming parsers (busboy) have no serializer, and this is a capped buffer.
 */
function parseMultipart(buf: Buffer, boundary: string): { fields: FormFields; files: RawPart[] } | null {
  const delim = Buffer.from(`--${boundary}`);
  const fields: FormFields = {};
  const files: RawPart[] = [];
  let pos = buf.indexOf(delim);
  if (pos < 0) return buf.length === 0 ? { fields, files } : null;
  for (;;) {
    pos += delim.length;
    if (buf[pos] === 0x2d && buf[pos + 1] === 0x2d) return { fields, files }; // closing `--boundary--`
    if (buf[pos] !== 0x0d || buf[pos + 1] !== 0x0a) return null;
    const headEnd = buf.indexOf('\r\n\r\n', pos + 2);
    if (headEnd < 0) return null;
    const next = buf.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headEnd + 4);
    if (next < 0) return null;
    const head = buf.subarray(pos + 2, headEnd).toString('latin1');
    const data = buf.subarray(headEnd + 4, next);
    const name = NAME.exec(head)?.[1];
    if (name === undefined) return null;
    if (FILENAME.test(head) || CONTENT_TYPE_LINE.test(head)) files.push({ name, head, data });
    else addField(fields, name, data.toString('utf8'));
    pos = next + 2;
  }
}

function serializeMultipart(fields: FormFields, files: RawPart[], boundary: string): Buffer {
  const out: Buffer[] = [];
  for (const [name, v] of Object.entries(fields)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      out.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name.replace(/["\r\n]/g, '_')}"\r\n\r\n`), Buffer.from(one), Buffer.from('\r\n'));
    }
  }
  for (const f of files) out.push(Buffer.from(`--${boundary}\r\n${f.head}\r\n\r\n`, 'latin1'), f.data, Buffer.from('\r\n'));
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

/** Content-Encodings the body phase decodes (node:zlib). */
export const DECODABLE = new Set(['', 'identity', 'gzip', 'x-gzip', 'deflate', 'br']);

/**
 * A response body decoded from its Content-Encoding, or null when the decoded bytes pass `cap`
 * (zlib's maxOutputLength: a small gzip bomb never inflates past the cap). Throws on corrupt data.
 */
export function decodeBody(buf: Buffer, encoding: string, cap: number): Buffer | null {
  const opts = { maxOutputLength: cap + 1 };
  let out: Buffer;
  try {
    switch (encoding) {
      case '': case 'identity': out = buf; break;
      case 'gzip': case 'x-gzip': out = gunzipSync(buf, opts); break;
      case 'deflate': out = inflateSync(buf, opts); break;
      case 'br': out = brotliDecompressSync(buf, opts); break;
      default: throw new Error(`unsupported content-encoding ${encoding}`);
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
    throw err;
  }
  return out.length > cap ? null : out;
}
