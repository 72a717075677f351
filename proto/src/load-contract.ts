import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR, protoFiles } from './proto-files.js';

const require = createRequire(import.meta.url);
const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));

/** A folder of .proto files beside core's (a plugin's own contract): `dir` holds `wanllmdb/<area>/v1/*.proto`. */
export interface ContractSource {
  dir: string;
}

/** Every .proto file of the sources, as absolute paths. */
export function sourceFiles(sources: readonly ContractSource[]): string[] {
  return sources.flatMap((s) => protoFiles(s.dir).map((f) => join(s.dir, f)));
}

/**
 * Loads the whole contract — core's .proto files and those of `sources` — into
 * one protobufjs Root with comments and options (`(google.api.http)`,
 * `(wanllmdb.auth.v1.permission)` …) kept. An import is looked up in the
 * sources' folders, then in core's; well-known types come from protobufjs.
 */
export function loadContractRoot(sources: readonly ContractSource[] = []): protobuf.Root {
  const root = new protobuf.Root();
  const dirs = [...sources.map((s) => s.dir), PROTO_DIR];
  root.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    if (target.startsWith('google/protobuf/')) {
      // Bundled with protobufjs: struct/empty/… are built in ("common"); descriptor.proto ships as a file.
      return target in protobuf.common ? target : join(protobufjsDir, target);
    }
    return dirs.map((d) => join(d, target)).find((p) => existsSync(p)) ?? join(PROTO_DIR, target);
  };
  root.loadSync([...protoFiles().map((f) => join(PROTO_DIR, f)), ...sourceFiles(sources)], { keepCase: false, alternateCommentMode: true });
  root.resolveAll();
  return root;
}
