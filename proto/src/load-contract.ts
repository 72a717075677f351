import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR, protoFiles } from './proto-files.js';

const require = createRequire(import.meta.url);
const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));

/**
 * Loads the whole contract into one protobufjs Root with comments and
 * options (`(google.api.http)`, `(wanllmdb.auth.v1.permission)` …) kept.
 * Well-known types come from protobufjs itself.
 */
export function loadContractRoot(files: string[] = protoFiles(), includeDir = PROTO_DIR): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.startsWith('google/protobuf/')) {
      // Bundled with protobufjs: struct/empty/… are built in ("common"); descriptor.proto ships as a file.
      return target in protobuf.common ? target : join(protobufjsDir, target);
    }
    return join(includeDir, target);
  };
  root.loadSync(files, { keepCase: false, alternateCommentMode: true });
  root.resolveAll();
  return root;
}
