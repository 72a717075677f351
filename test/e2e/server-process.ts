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
  /** The bootstrap administrator's access token and an API key (made on first use; valid across restarts on the same data). */
  credentials(): Promise<Credentials>;
  /** Sends a signal and resolves with the exit code (null when killed). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface Credentials {
  accessToken: string;
  apiKey: string;
  /** `{ authorization: 'Bearer <apiKey>' }` */
  headers: Record<string, string>;
}

/** The administrator every test server is bootstrapped with (WANLLMDB_BOOTSTRAP_ADMIN). */
export const E2E_ADMIN = { email: 'admin@e2e.test', password: 'e2e-admin-password' };

/** Test servers hash passwords cheaply; production keeps the default cost. */
export const E2E_ENV = { WANLLMDB_BOOTSTRAP_ADMIN: `${E2E_ADMIN.email}:${E2E_ADMIN.password}`, WANLLMDB_SCRYPT_LN: '10' };

const credentialsByBase = new Map<string, Credentials>();

/** Signs in as the bootstrap administrator and makes an API key. */
export async function signIn(base: string): Promise<Credentials> {
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const json = (await res.json()) as any;
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
    return json.data;
  };
  const tokens = await post('/api/v1/auth/login', E2E_ADMIN);
  const made = await post('/api/v1/auth/api-keys', { name: 'e2e' }, { authorization: `Bearer ${tokens.accessToken}` });
  return { accessToken: tokens.accessToken, apiKey: made.key, headers: { authorization: `Bearer ${made.key}` } };
}

/**
 * Starts the real `wanllmdb serve` in its own process, from the TypeScript
 * sources (the `source` export condition), on free ports, with sign-in
 * required and the e2e administrator bootstrapped.
 */
export function startServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const proc = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'shells/server/src/cli.ts', 'serve', '--port', '0', '--http-port', '0', ...args],
    { cwd: repo, env: { ...process.env, WANLLMDB_LOG_LEVEL: 'info', ...E2E_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
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
        const dataKey = args.join(' ');
        resolve({
          proc,
          grpcPort: Number(m[1]),
          httpPort,
          base: `http://127.0.0.1:${httpPort}`,
          output: () => out,
          // Keyed by the data arguments: a restarted server on the same data accepts the same key.
          credentials: async () => {
            let c = credentialsByBase.get(dataKey);
            if (!c) credentialsByBase.set(dataKey, (c = await signIn(`http://127.0.0.1:${httpPort}`)));
            return c;
          },
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

/** Runs the CLI to completion (start-up errors, admin commands); `input` goes to its standard input. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'shells/server/src/cli.ts', ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (c: Buffer) => (output += c));
  proc.stderr!.on('data', (c: Buffer) => (output += c));
  if (input !== undefined) {
    proc.stdin!.on('error', () => undefined); // the process may exit before reading
    proc.stdin!.end(input);
  }
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, output })));
}

/** A generic gRPC client of the contract, as any other-language client would build one; `apiKey` goes in every call's metadata. */
export function grpcClients(port: number, apiKey?: string) {
  const pkg = protoLoader.loadSync(protoFiles(), { includeDirs: [PROTO_DIR], keepCase: false, longs: Number, enums: String, defaults: true });
  const loaded = grpc.loadPackageDefinition(pkg) as any;
  const address = `127.0.0.1:${port}`;
  const creds = grpc.credentials.createInsecure();
  const interceptors = apiKey
    ? [
        (options: any, next: any) =>
          new grpc.InterceptingCall(next(options), {
            start: (metadata, listener, go) => {
              metadata.set('authorization', `Bearer ${apiKey}`);
              go(metadata, listener);
            },
          }),
      ]
    : [];
  const projects = new loaded.wanllmdb.projects.v1.ProjectService(address, creds, { interceptors });
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

