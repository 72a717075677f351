import type { Kernel, LogLevel } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';
import type { CallMethod } from '../protocol.js';
import { APPEND_METRIC_BATCH, fileChunks, fullMethod, type EncodedBatch, type MethodCalls, type Transport, type UploadRequest } from './transport.js';

export interface EmbeddedOptions {
  /** The data folder; `wanllmdb serve` reads the same one by default (./.wanllmdb or WANLLMDB_DATA). */
  dataDir?: string;
  logLevel?: string;
}

/**
 * The local store with no server: a Kernel with the projects, tracking and
 * artifacts plugins, not listening, whose handlers are called in process. Settings come
 * from the environment exactly as for `wanllmdb serve` (WANLLMDB_DATA,
 * WANLLMDB_DB …), so a server started on the same folder sees every run;
 * SQLite in WAL mode lets both write at once.
 */
export class EmbeddedTransport implements Transport, MethodCalls {
  readonly name: string;
  readonly target: string;

  private constructor(
    private readonly kernel: Kernel,
    redact: (url: string) => string,
    private readonly idle: () => Promise<void>,
  ) {
    this.name = `embedded store in ${kernel.config.dataDir}`;
    this.target = `embedded ${redact(kernel.config.db)}`;
  }

  static async open(opts: EmbeddedOptions = {}): Promise<EmbeddedTransport> {
    const [{ Kernel, loadConfig, redactUrl }, { projectsPlugin }, { trackingPlugin, trackingApiRef }, { artifactsPlugin }] = await Promise.all([
      import('@wanllmdb/core'),
      import('@wanllmdb/plugin-projects'),
      import('@wanllmdb/plugin-tracking'),
      import('@wanllmdb/plugin-artifacts'),
    ]);
    const config = loadConfig({ flags: { dataDir: opts.dataDir } });
    // The kernel's own log lines are for operators; a training script sees only warnings unless asked.
    if (!process.env.WANLLMDB_LOG_LEVEL) config.logLevel = (opts.logLevel ?? 'warn') as LogLevel;
    const kernel = new Kernel({ plugins: [projectsPlugin, trackingPlugin, artifactsPlugin], config, listen: false });
    await kernel.start();
    return new EmbeddedTransport(kernel, redactUrl, () => kernel.get(trackingApiRef).metricsSettled());
  }

  async appendBatches(runId: string, batches: readonly EncodedBatch[]): Promise<tracking.v1.MetricWarning[]> {
    const warnings: tracking.v1.MetricWarning[] = [];
    for (const b of batches) {
      const res = await this.kernel.call<tracking.v1.AppendMetricsResponse>(APPEND_METRIC_BATCH, { runId, batchId: b.batchId, arrowIpc: b.bytes });
      if (res.warnings?.length) warnings.push(...res.warnings);
    }
    return warnings;
  }

  call(method: CallMethod, request: unknown): Promise<unknown> {
    if (method === 'uploadFile') return this.kernel.call(fullMethod(method), fileChunks(request as UploadRequest));
    return this.kernel.call(fullMethod(method), request);
  }

  unary<T>(fullMethod: string, request: unknown): Promise<T> {
    return this.kernel.call<T>(fullMethod, request);
  }

  clientStream<T>(fullMethod: string, messages: AsyncIterable<unknown>): Promise<T> {
    return this.kernel.call<T>(fullMethod, messages);
  }

  async serverStream<T>(fullMethod: string, request: unknown, onMessage: (message: T) => Promise<void> | void): Promise<void> {
    const host = this.kernel.rpcHost;
    const m = host.method(fullMethod);
    if (!m) throw new Error(`${fullMethod} is not served by the embedded store`);
    await host.invoke(m, request, { transport: 'local', headers: {} }, async (msg) => onMessage(msg as T));
  }

  /**
   * Lets the store finish aggregating what this process appended (so a server
   * already running on the same folder shows all of it: it only aggregates
   * other writers' batches when it starts), at most `idleMs`, then stops the kernel.
   */
  async close(idleMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, idleMs)))]);
    clearTimeout(timer);
    await this.kernel.stop();
  }
}
