import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// One config runs every package's tests from source: workspace packages
// resolve to their src/ so a change is tested without a build.
export default defineConfig({
  resolve: {
    alias: {
      '@wanllmdb/core/testing': here('./core/src/testing/index.ts'),
      '@wanllmdb/core/grpc': here('./core/src/rpc/grpc-client.ts'),
      '@wanllmdb/core': here('./core/src/index.ts'),
      '@wanllmdb/proto/client': here('./proto/src/client.ts'),
      '@wanllmdb/proto': here('./proto/src/index.ts'),
      '@wanllmdb/plugin-artifacts': here('./plugins/artifacts/src/index.ts'),
      '@wanllmdb/plugin-auth': here('./plugins/auth/src/index.ts'),
      '@wanllmdb/plugin-projects': here('./plugins/projects/src/index.ts'),
      '@wanllmdb/plugin-tracking': here('./plugins/tracking/src/index.ts'),
      '@wanllmdb/sdk': here('./sdk/typescript/src/index.ts'),
      '@wanllmdb/server': here('./shells/server/src/index.ts'),
    },
  },
  test: {
    include: ['{core,proto,plugins,shells,sdk,plugin-template}/**/src/**/*.test.ts', 'plugins/*/ui/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: [here('./test/global-setup.ts')],
  },
});
