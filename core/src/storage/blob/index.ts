export type { BlobInfo, BlobSource, BlobStore, ByteRange } from './blob-store.js';
export { FsBlobStore } from './fs-blob-store.js';
export { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';
export { createBlobStore, parseBlobStoreUrl, type BlobStoreTarget } from './create-blob-store.js';
export { assertDigest, isDigest } from './digest.js';
