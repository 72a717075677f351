import { defineConfig } from 'vite';

// The UI is served by `wanllmdb serve` at `/`; in development `vite` proxies the API to a running server.
export default defineConfig({
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1024 },
  server: { proxy: { '/api': process.env.WANLLMDB_API ?? 'http://127.0.0.1:8080', '/ui': process.env.WANLLMDB_API ?? 'http://127.0.0.1:8080' } },
  esbuild: { target: 'es2022' },
});
