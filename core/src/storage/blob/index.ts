export type { BlobInfo, BlobLinkOptions, BlobSource, BlobStore, ByteRange } from './blob-store.js';
export { FsBlobStore } from './fs-blob-store.js';
// A type here: createBlobStore loads the S3 adapter (and the AWS SDK) only when configured.
export type { S3BlobStore, S3BlobStoreOptions } from './s3-blob-store.js';
export { createBlobStore, parseBlobStoreUrl, type BlobStoreTarget } from './create-blob-store.js';
export { assertDigest, isDigest } from './digest.js';
