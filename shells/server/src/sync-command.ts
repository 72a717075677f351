import type { Command } from 'commander';
import type { SyncProgress } from '@wanllmdb/sdk';
import { mb, progressBar } from './progress-bar.js';

/** Sync progress: per run, with ops and megabytes. */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr, everyMs = 2_000) {
  const bar = progressBar(stream, everyMs);
  let lastRun = -1;
  return {
    update(p: SyncProgress) {
      const newRun = p.runIndex !== lastRun;
      lastRun = p.runIndex;
      const pct = p.totalBytes ? Math.floor((100 * p.doneBytes) / p.totalBytes) : 100;
      bar.update('sync', pct, `run ${p.runIndex + 1}/${p.runs} · ${p.doneOps}/${p.totalOps} ops · ${mb(p.doneBytes)}/${mb(p.totalBytes)} MB (run ${p.run})`, newRun || p.doneOps === p.totalOps);
    },
    done: () => bar.done(),
  };
}

/** `wanllmdb sync DIR… [--url grpc://…]`: uploads offline runs, exactly once, resumable. */
export function registerSyncCommand(program: Command): void {
  program
    .command('sync')
    .description('Upload offline runs (folders written by the SDK in offline mode) to a server, or into the local data folder without --url.')
    .argument('<dirs...>', 'offline run folders, or folders of them (e.g. .wanllmdb/offline)')
    .option('--url <url>', 'server to upload to, grpc://host:port (default: the local embedded store)')
    .option('--api-key <key>', 'API key for the server [env WANLLMDB_API_KEY]')
    .option('--data <dir>', 'data folder of the local store when there is no --url [env WANLLMDB_DATA, default ./.wanllmdb]')
    .action(async (dirs: string[], o: { url?: string; apiKey?: string; data?: string }) => {
      const { syncOffline } = await import('@wanllmdb/sdk');
      const progress = progressReporter();
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await syncOffline(dirs, {
          url: o.url,
          apiKey: o.apiKey ?? process.env.WANLLMDB_API_KEY,
          dataDir: o.data,
          onProgress: progress.update,
          onRetry: (err) => process.stderr.write(`\nwanllmdb sync: retrying after ${err instanceof Error ? err.message : String(err)}\n`),
          signal: stop.signal,
        });
        progress.done();
        for (const r of result.runs) {
          process.stdout.write(`${r.id}: ${r.uploaded} uploaded (${r.batches} metric batches, ${r.points} points), ${r.skipped} already synced\n`);
        }
        process.stdout.write(`synced ${result.runs.length} run(s) to ${result.target}\n`);
      } catch (err) {
        progress.done();
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
