#!/usr/bin/env node
// The wanllmdb command. The TypeScript build (npm install runs it) puts the CLI in dist/.
import('../dist/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli.js')) {
    console.error('wanllmdb is not built yet. Run `npm install` (or `npm run build`) at the repository root.');
    process.exit(1);
  }
  throw err;
});
