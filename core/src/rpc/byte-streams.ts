import type { Readable } from 'node:stream';
import { Errors } from '../errors.js';
import type { BlobStore } from '../storage/blob/blob-store.js';

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

/**
 * Sends the blobs `digests` one after the other as one download (HttpBody
 * messages of `contentType`; an empty body is one empty message). Each blob
 * is read as it is sent, never whole; when the caller goes away the read
 * stops and this returns quietly.
 */
export async function sendBlobs(blobs: BlobStore, digests: readonly string[], contentType: string, send: (m: { contentType: string; data: Uint8Array }) => Promise<void>, signal: AbortSignal): Promise<void> {
  let sent = false;
  for (const digest of digests) {
    const stream: Readable = await blobs.get(digest);
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
