import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR, protoFiles } from '@wanllmdb/proto';

const repo = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  proc: ChildProcess;
  grpcPort: number;
  httpPort: number;
  base: string;
  output(): string;
  /** Sends a signal and resolves with the exit code (null when killed). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the real `wanllmdb serve` in its own process, from the TypeScript
 * sources (the `source` export condition), on free ports.
 */
export function startServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const proc = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'shells/server/src/cli.ts', 'serve', '--port', '0', '--http-port', '0', ...args],
    { cwd: repo, env: { ...process.env, WANLLMDB_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${out}`)), 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"grpc":"[^"]*:(\d+)","http":"http:\/\/[^"]*:(\d+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        const httpPort = Number(m[2]);
        resolve({
          proc,
          grpcPort: Number(m[1]),
          httpPort,
          base: `http://127.0.0.1:${httpPort}`,
          output: () => out,
          stop: (signal = 'SIGTERM') => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            return exited;
          },
        });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
}

/** Runs the CLI to completion (for start-up errors). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'shells/server/src/cli.ts', ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (c: Buffer) => (output += c));
  proc.stderr.on('data', (c: Buffer) => (output += c));
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, output })));
}

/** A generic gRPC client of the contract, as any other-language client would build one. */
export function grpcClients(port: number) {
  const pkg = protoLoader.loadSync(protoFiles(), { includeDirs: [PROTO_DIR], keepCase: false, longs: Number, enums: String, defaults: true });
  const loaded = grpc.loadPackageDefinition(pkg) as any;
  const address = `127.0.0.1:${port}`;
  const creds = grpc.credentials.createInsecure();
  const projects = new loaded.wanllmdb.projects.v1.ProjectService(address, creds);
  const unary = (client: any, method: string) => (req: unknown) =>
    new Promise<any>((resolve, reject) => client[method](req, (err: unknown, res: unknown) => (err ? reject(err) : resolve(res))));
  return {
    projects,
    createProject: unary(projects, 'createProject'),
    getProject: unary(projects, 'getProject'),
    listProjects: unary(projects, 'listProjects'),
    close: () => projects.close(),
  };
}
