export { artifactsPlugin, createArtifactsPlugin, ARTIFACTS_PROTO_DIR, type ArtifactsPluginOptions } from './artifacts-plugin.js';
export { artifacts } from './gen/index.js';
export { canonicalManifest, type ManifestFile } from './manifest.js';
export { PackedBlobStore } from './packs.js';
