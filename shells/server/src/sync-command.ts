import type { Command } from 'commander';
import type { SyncProgress } from '@wanllmdb/sdk';

const mb = (n: number) => (n / 2 ** 20).toFixed(1);

/**
 * Progress on stderr: a bar redrawn in place on a terminal, plain lines at
 * most every `everyMs` (and at each new run) otherwise, so CI logs stay short.
 */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr, everyMs = 2_000) {
  const tty = !!stream.isTTY;
  let lastDraw = 0;
  let lastRun = -1;
  let drawn = false;
  const text = (p: SyncProgress) => {
    const pct = p.totalBytes ? Math.floor((100 * p.doneBytes) / p.totalBytes) : 100;
    return { pct, tail: `${pct}% · run ${p.runIndex + 1}/${p.runs} · ${p.doneOps}/${p.totalOps} ops · ${mb(p.doneBytes)}/${mb(p.totalBytes)} MB` };
  };
  return {
    update(p: SyncProgress) {
      const now = Date.now();
      const newRun = p.runIndex !== lastRun;
      lastRun = p.runIndex;
      const { pct, tail } = text(p);
      if (tty) {
        if (now - lastDraw < 100 && !newRun && p.doneOps !== p.totalOps) return;
        const width = 30;
        const filled = Math.round((width * pct) / 100);
        stream.write(`\r\x1b[2Ksync [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${tail}`);
        drawn = true;
      } else {
        if (now - lastDraw < everyMs && !newRun && p.doneOps !== p.totalOps) return;
        stream.write(`sync: ${tail} (run ${p.run})\n`);
      }
      lastDraw = now;
    },
    done() {
      if (tty && drawn) stream.write('\n');
    },
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
