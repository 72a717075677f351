import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { BlobStore } from '../storage/blob/blob-store.js';
import { FsBlobStore } from '../storage/blob/fs-blob-store.js';
import { S3BlobStore } from '../storage/blob/s3-blob-store.js';

export interface BlobBackend {
  name: 'file' | 's3';
  /** A new, empty store; closing it discards its contents where that is cheap. */
  create(): Promise<BlobStore>;
}

/** s3rver's built-in account; it checks request signatures against these. */
const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Every BlobStore adapter, each making fresh stores (a temp directory, a new bucket on the run's s3rver). */
export function blobBackends(): BlobBackend[] {
  return [
    {
      name: 'file',
      async create() {
        const root = await mkdtemp(join(tmpdir(), 'wldb-blobs-'));
        return removingOnClose(await FsBlobStore.open(root), root);
      },
    },
    {
      name: 's3',
      create: () =>
        S3BlobStore.open({
          bucket: `wldb-test-${randomUUID()}`,
          endpoint: inject('s3Endpoint'),
          region: 'us-east-1',
          forcePathStyle: true,
          credentials: S3RVER_CREDENTIALS,
        }),
    },
  ];
}

/** `store`, whose close() also deletes its temp directory. */
function removingOnClose(store: FsBlobStore, root: string): BlobStore {
  return {
    kind: store.kind,
    put: (source, opts) => store.put(source, opts),
    get: (digest, range) => store.get(digest, range),
    stat: (digest) => store.stat(digest),
    exists: (digest) => store.exists(digest),
    delete: (digest) => store.delete(digest),
    list: (prefix) => store.list(prefix),
    namespace: (name) => store.namespace(name),
    async close() {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
