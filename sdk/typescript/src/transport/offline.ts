import { readFile } from 'node:fs/promises';
import type { tracking } from '@wanllmdb/proto';
import type { CallMethod } from '../protocol.js';
import { readOps, SpoolWriter } from '../spool/spool.js';
import type { EncodedBatch, Transport, UploadRequest } from './transport.js';

/** A run record made locally (the server makes the real one at sync). */
export function localRun(req: tracking.v1.CreateRunRequest, patch: Partial<tracking.v1.Run> = {}): tracking.v1.Run {
  const now = new Date().toISOString();
  return {
    id: req.id,
    projectId: req.projectId,
    name: req.name,
    group: req.group,
    jobType: req.jobType,
    tags: req.tags,
    notes: req.notes,
    state: 'running',
    config: req.config ?? {},
    summary: {},
    git: req.git,
    environment: req.environment,
    url: `/runs/${req.id}`,
    createdBy: '',
    startedAt: now,
    finishedAt: '',
    heartbeatAt: now,
    createdAt: now,
    updatedAt: now,
    ...patch,
  };
}

/**
 * Offline mode: every operation becomes a durable file in the run's spool
 * folder (see spool.ts); `wanllmdb sync` uploads them later.
 */
export class OfflineTransport implements Transport {
  readonly name: string;
  readonly target: string;
  private writer?: SpoolWriter;
  private createRun?: tracking.v1.CreateRunRequest;

  constructor(readonly dir: string) {
    this.name = `offline folder ${dir}`;
    this.target = `offline ${dir}`;
  }

  async appendBatches(_runId: string, batches: readonly EncodedBatch[]): Promise<tracking.v1.MetricWarning[]> {
    await this.open().writeBatches(batches);
    return [];
  }

  private open(): SpoolWriter {
    if (!this.writer) throw new Error('the offline run was not created');
    return this.writer;
  }

  async call(method: CallMethod, request: unknown): Promise<unknown> {
    const { Errors } = await import('@wanllmdb/core');
    switch (method) {
      case 'createRun': {
        const req = request as tracking.v1.CreateRunRequest;
        const { writer, existed, run } = await SpoolWriter.open(this.dir, req);
        if (existed && run.createRun.id !== req.id) {
          throw Errors.ALREADY_EXISTS(`The offline folder ${this.dir} holds run ${run.createRun.id}, not ${req.id}. Give each run its own folder (leave \`dir\` unset for <data>/offline/<run-id>).`);
        }
        if (existed && (req.resume === 'never' || req.resume === '')) {
          throw Errors.ALREADY_EXISTS(`Offline run ${req.id} already exists in ${this.dir}. Pass resume: 'allow' to continue it, or leave \`id\` unset for a new run.`);
        }
        this.writer = writer;
        this.createRun = run.createRun;
        return { data: localRun(run.createRun) };
      }
      case 'finishRun': {
        const req = request as tracking.v1.FinishRunRequest;
        await this.open().writeOp('finish', req);
        const state = req.state || (req.exitCode ? 'crashed' : 'finished');
        return { data: localRun(this.createRun!, { state, exitCode: req.exitCode, summary: req.summary ?? {}, finishedAt: new Date().toISOString() }) };
      }
      case 'updateConfig':
        await this.open().writeOp('config', request);
        return {};
      case 'updateSummary':
        await this.open().writeOp('summary', request);
        return {};
      case 'appendLogs':
        await this.open().writeOp('logs', request);
        return { accepted: (request as tracking.v1.AppendLogsRequest).lines.length };
      case 'uploadFile': {
        const req = request as UploadRequest;
        const f = await this.open().writeFile(req.path, req.source);
        return { data: { path: f.path, size: f.size, digest: f.digest, createdAt: f.createdAt } };
      }
      case 'heartbeat':
        return { state: 'running' };
      case 'getRun':
        return { data: localRun(this.createRun!) };
      case 'listMetricKeys':
        return { data: await this.lastSteps() };
    }
  }

  /** Last step of each key, from the newest batches of the spool (enough to resume the step counter). */
  private async lastSteps(): Promise<Partial<tracking.v1.MetricKeyStats>[]> {
    const { decodeMetricBatch } = await import('@wanllmdb/plugin-tracking');
    const batches = (await readOps(this.dir)).filter((o) => o.kind === 'metrics').slice(-20);
    const last = new Map<string, number>();
    for (const op of batches) {
      const cols = decodeMetricBatch(new Uint8Array(await readFile(op.file)));
      for (let i = 0; i < cols.length; i++) {
        const key = cols.keys[cols.keyIndex[i]!]!;
        const step = cols.step[i]!;
        if (!(last.get(key)! >= step)) last.set(key, step);
      }
    }
    return [...last].map(([key, lastStep]) => ({ key, lastStep }));
  }

  async close(): Promise<void> {}
}
