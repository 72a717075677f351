import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Moves WAL checkpoints off the event loop (ADR 0014). By default the
 * connection whose COMMIT takes the WAL past 1,000 pages copies the WAL into
 * the database file and fsyncs it inside that COMMIT — a stall of every call
 * waiting on the writer, and each hot page copied again every 1,000 pages of
 * log. Here the writer's own checkpoints are only a backstop
 * (BACKSTOP_PAGES); a thread with its own connection runs a PASSIVE
 * checkpoint (it never blocks a writer or a reader) every ROUND_MS, so a hot
 * page is copied at most a few times a second however many commits wrote it.
 *
 * Each process writing the file runs one; two processes' checkpoints take
 * turns (the one that finds the other running skips its round).
 */

/** The writer's own automatic checkpoint, in pages: only reached if the thread falls far behind or is gone. */
export const BACKSTOP_PAGES = 65_536;
const ROUND_MS = 250;

// A plain script (no TypeScript, no imports) so that it runs from sources and from dist alike.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.filename, { fileMustExist: true, timeout: 0 });
db.pragma('wal_autocheckpoint = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const round = () => {
  try {
    checkpoint.get();
  } catch (err) {
    // SQLITE_BUSY: another process is checkpointing or the file is being recovered; next round.
    if (!String(err && err.code).startsWith('SQLITE_BUSY')) parentPort.postMessage({ error: String(err && err.message) });
  }
};
const timer = setInterval(round, workerData.roundMs);
parentPort.on('message', (m) => {
  if (m === 'stop') {
    clearInterval(timer);
    round();
    db.close();
    parentPort.close();
  }
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(filename: string, onError: (message: string) => void) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { filename, driver, roundMs: ROUND_MS } });
    this.worker.on('message', (m: { error?: string }) => m.error && onError(m.error));
    this.worker.on('error', (err) => onError(err.message));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    // The thread never keeps a process alive on its own.
    this.worker.unref();
  }

  /** Runs a last checkpoint round, closes the thread's connection and waits for it to exit. */
  async stop(): Promise<void> {
    // Waiting for the thread must keep the process alive (an unref'd thread would let it exit mid-close).
    this.worker.ref();
    this.worker.postMessage('stop');
    await this.exited;
  }
}
