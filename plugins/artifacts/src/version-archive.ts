import { once } from 'node:events';
import { sendBlobs } from '@wanllmdb/core';
import type { BlobStore } from '@wanllmdb/core';
import tar from 'tar-stream';
import type { ArtifactRepository } from './artifact-repository.js';
import { bodyParts } from './manifest.js';

const PAGE = 1000;

/**
 * Sends a whole version as one tar stream (`<name>-v<n>/<path>` entries,
 * in path order, each file's mode kept), read a page of the manifest and
 * one body at a time: memory stays bounded whatever the version holds.
 * References are not in it (their bytes live elsewhere; the SDK fetches them).
 */
export async function sendVersionArchive(
  blobs: BlobStore,
  repo: ArtifactRepository,
  versionId: string,
  root: string,
  send: (m: { contentType: string; data: Uint8Array }) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const contentType = 'application/x-tar';
  const pack = tar.pack();
  // The pack's output goes to the caller as it is produced; a slow caller slows the reading of bodies.
  const pumped = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) await send({ contentType, data: chunk });
  })();
  // Rejects when sending failed (the caller went away); never settles otherwise.
  const pumpFailed = pumped.then(() => new Promise<never>(() => {}));
  pumpFailed.catch(() => {});
  const fail = (err: unknown) => {
    pack.destroy(err as Error);
    return pumped.catch(() => {});
  };
  try {
    for (let after = ''; ; ) {
      const files = await repo.files(versionId, '', after, PAGE);
      for (const f of files) {
        if (signal.aborted) return await fail(new Error('the caller went away'));
        if (f.ref) continue;
        let entry!: ReturnType<typeof pack.entry>;
        const written = new Promise<void>((resolve, reject) => {
          entry = pack.entry({ name: `${root}/${f.path}`, size: f.size, mode: f.mode || 0o644, type: 'file' }, (err) => (err ? reject(err) : resolve()));
        });
        const parts = bodyParts(f);
        await sendBlobs(blobs, parts, contentType, async ({ data }) => {
          // Waits for the pack to want more — or for its reader to have failed or the caller to have left, which end the archive.
          if (data.length && !entry.write(data)) await Promise.race([once(entry, 'drain', { signal }), pumpFailed]);
        }, signal);
        entry.end(undefined);
        await written;
      }
      if (files.length < PAGE) break;
      after = files.at(-1)!.path;
    }
    pack.finalize();
    await pumped;
  } catch (err) {
    await fail(err);
    throw err;
  }
}
