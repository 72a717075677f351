import type { Readable } from 'node:stream';
import { Errors } from '../errors.js';
import type { BlobStore, ByteRange } from '../storage/blob/blob-store.js';
import { attachmentDisposition } from '../validation/content-types.js';
import type { CallContext } from './call-context.js';

/**
 * The bytes of an upload that arrives as a client stream of chunks (`data`),
 * its first message already read by the handler (it names what is
 * uploaded): `check(chunk, n)` throws when a later chunk names something
 * else. Ends with the stream; a caller gone first is a refusal, so the
 * blob store keeps nothing.
 */
export async function* chunkData<M extends { data?: Uint8Array }>(head: M, rest: AsyncIterator<M>, signal: AbortSignal, check: (chunk: M, n: number) => void): AsyncGenerator<Uint8Array> {
  if (head.data?.length) yield head.data;
  for (let n = 1; ; n++) {
    if (signal.aborted) throw Errors.VALIDATION('The upload was cancelled before its last chunk; nothing was stored.');
    const next = await rest.next();
    if (next.done) return;
    check(next.value, n);
    if (next.value.data?.length) yield next.value.data;
  }
}

/** A body stored as blobs, in order: one blob, or the chunks of a large file. */
export interface BodyPart {
  digest: string;
  size: number;
}

/**
 * Sends the blobs `digests` one after the other as one download (HttpBody
 * messages of `contentType`; an empty body is one empty message). Each blob
 * is read as it is sent, never whole; when the caller goes away the read
 * stops and this returns quietly. With `range` (inclusive bounds over the
 * whole body) and the parts' sizes, only those bytes are read and sent.
 */
export async function sendBlobs(
  blobs: BlobStore,
  digests: readonly string[] | readonly BodyPart[],
  contentType: string,
  send: (m: { contentType: string; data: Uint8Array }) => Promise<void>,
  signal: AbortSignal,
  range?: { start: number; end: number },
): Promise<void> {
  let sent = false;
  let offset = 0;
  for (const part of digests) {
    const digest = typeof part === 'string' ? part : part.digest;
    let within: ByteRange | undefined;
    if (range) {
      if (typeof part === 'string') throw new TypeError('sendBlobs: a range needs the parts\' sizes');
      const first = offset;
      offset += part.size;
      if (offset <= range.start || first > range.end || part.size === 0) continue;
      within = { start: Math.max(range.start - first, 0), end: Math.min(range.end - first, part.size - 1) };
    }
    const stream: Readable = await blobs.get(digest, within);
    const stop = () => stream.destroy();
    signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        await send({ contentType, data: chunk });
        sent = true;
        if (signal.aborted) return;
      }
    } catch (err) {
      if (!signal.aborted) throw err; // the caller left: not an error
      return;
    } finally {
      signal.removeEventListener('abort', stop);
      stream.destroy();
    }
  }
  if (!sent) await send({ contentType, data: new Uint8Array(0) });
}

/**
 * The one byte range an HTTP `Range` header asks of a body of `size` bytes
 * (`bytes=a-b`, `bytes=a-`, `bytes=-n`): undefined for none, or for a form
 * this server answers with the whole body (several ranges, another unit);
 * 'unsatisfiable' when it lies past the end.
 */
export function httpRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header && /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(size - n, 0), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined; // not a valid range: RFC 9110 says ignore it
  return { start, end };
}

/**
 * Serves a stored body as a download: over HTTP with its length, an ETag
 * (the body's digest), `Accept-Ranges` and — for a `Range` request — only
 * the bytes asked for (206, or 416 past the end), so an interrupted
 * download resumes where it stopped; over gRPC and in process, the whole
 * body. `filename` makes browsers save it under that name.
 */
export async function serveBody(
  blobs: BlobStore,
  body: { parts: readonly BodyPart[]; size: number; etag: string; contentType: string; filename?: string },
  ctx: CallContext,
  send: (m: { contentType: string; data: Uint8Array }) => Promise<void>,
): Promise<void> {
  if (ctx.transport !== 'http') return sendBlobs(blobs, body.parts, body.contentType, send, ctx.signal);
  const headers: Record<string, string> = { 'accept-ranges': 'bytes', etag: `"${body.etag}"` };
  if (body.filename) headers['content-disposition'] = attachmentDisposition(body.filename);
  // If-Range: a range only of the same body; another answer sends it whole.
  const ifRange = ctx.header('if-range');
  const range = ifRange && ifRange !== headers.etag ? undefined : httpRange(ctx.header('range'), body.size);
  if (range === 'unsatisfiable') {
    ctx.respond({ status: 416, headers: { ...headers, 'content-range': `bytes */${body.size}`, 'content-length': '0' } });
    return;
  }
  if (range) {
    ctx.respond({ status: 206, headers: { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${body.size}`, 'content-length': String(range.end - range.start + 1) } });
    return sendBlobs(blobs, body.parts, body.contentType, send, ctx.signal, range);
  }
  ctx.respond({ headers: { ...headers, 'content-length': String(body.size) } });
  return sendBlobs(blobs, body.parts, body.contentType, send, ctx.signal);
}
