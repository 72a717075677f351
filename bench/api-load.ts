/**
 * How the server holds many users: the real `wanllmdb serve` (built, signed
 * in, as users run it) with N users, each with an API key, a project of
 * runs and a run to log into. Two figures for each of "list a project's
 * runs" and "log a 2-point metric batch":
 *
 * - open loop: `--connections` keep-alive connections (default 1,000, one
 *   user each), each sending one request per second on its own schedule, so
 *   the offered rate does not drop when the server slows down; latency is
 *   counted from when a request was due, not when it was sent (no
 *   coordinated omission). Target: P95 ≤ 100 ms, 0 errors.
 * - saturation: the same connections sending back to back; requests/s, the
 *   server's CPU (all its processes) and requests per CPU-second.
 *
 * The limit, in the same run: a bare Fastify route answering the same bytes
 * as the real list call, on the same number of processes, under the same
 * load generator.
 *
 *   npx tsx bench/api-load.ts [--db sqlite|postgres] [--users 1000] [--connections 1000]
 *     [--seconds 15] [--warmup 5] [--runs 10] [--workers N] [--root DIR] [--tiny]
 *
 * Each open loop first runs `--warmup` seconds at the same rate, reported
 * apart (`warmup`): there all 1,000 connections are opened at once, and the
 * server's code and caches warm up; the figures are the steady state after
 * it. The P95 of every second goes to stderr.
 *
 * `--root` runs another checkout's build (to measure before/after).
 * PostgreSQL is WLDB_TEST_PG_URL or postgres://postgres@127.0.0.1:5432/test
 * (a temp schema) with NATS on 127.0.0.1:4222. Progress goes to stderr; one
 * JSON line to stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Client } from 'undici';

const repo = fileURLToPath(new URL('..', import.meta.url));
const PG_URL = process.env.WLDB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'sqlite' },
    users: { type: 'string' },
    connections: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    runs: { type: 'string' },
    workers: { type: 'string' },
    root: { type: 'string', default: repo },
    // Run the server from its TypeScript sources (tsx) instead of the build in dist/.
    source: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    phases: { type: 'string', default: 'bare,open,saturation' },
    kinds: { type: 'string', default: 'list,ingest' },
  },
});
const tiny = args.tiny;
const int = (name: string, raw: string | undefined, dflt: number) => {
  const n = raw === undefined ? dflt : Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return n;
};
const users = int('users', args.users, tiny ? 4 : 1000);
const connections = int('connections', args.connections, tiny ? 4 : 1000);
const seconds = int('seconds', args.seconds, tiny ? 1 : 15);
const warmup = args.warmup === '0' ? 0 : int('warmup', args.warmup, tiny ? 1 : 5);
const runsPerProject = int('runs', args.runs, tiny ? 2 : 10);
const workers = args.workers === undefined ? undefined : int('workers', args.workers, 1);
const root = resolve(args.root);
const phases = new Set(args.phases.split(','));
if (args.db !== 'sqlite' && args.db !== 'postgres') throw new Error(`--db is sqlite or postgres, got ${args.db}`);
const log = (m: string) => process.stderr.write(`[api-load] ${m}\n`);

// ---------------------------------------------------------------------------
// Processes and their CPU time

/** CPU seconds (user + system) used so far by `pid` and every process below it. */
function cpuSeconds(pid: number): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) / ticks; // utime, stime
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) stack.push(Number(t));
    } catch {
      // gone
    }
  }
  return total;
}

interface Proc {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

function waitForPort(child: ChildProcess, pattern: RegExp, what: string): Promise<number> {
  let out = '';
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 60 s:\n${out}`)), 60_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}):\n${out}`)));
  });
}

const stopper = (child: ChildProcess) => async () => {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
};

const ADMIN = { email: 'admin@bench.test', password: 'bench-admin-password' };

async function startServer(dataDir: string, pgSchemaUrl: string | undefined): Promise<Proc> {
  const serveArgs = ['serve', '--port', '0', '--http-port', '0', '--data', dataDir];
  if (pgSchemaUrl) serveArgs.push('--db', pgSchemaUrl, '--bus', 'nats://127.0.0.1:4222');
  if (workers !== undefined) serveArgs.push('--workers', String(workers));
  // e.g. WLDB_BENCH_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the server alone.
  const nodeArgs = (process.env.WLDB_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const entry = args.source ? ['--conditions=source', '--import', 'tsx', join(root, 'shells/server/src/cli.ts')] : [join(root, 'shells/server/bin/wanllmdb.js')];
  const child = spawn(process.execPath, [...nodeArgs, ...entry, ...serveArgs], {
    cwd: root,
    env: {
      ...process.env,
      WANLLMDB_LOG_LEVEL: 'info',
      WANLLMDB_BOOTSTRAP_ADMIN: `${ADMIN.email}:${ADMIN.password}`,
      // Cheap password hashing: setup signs 1,000 users in; requests use API keys.
      WANLLMDB_SCRYPT_LN: '10',
      // One load generator on one address stands for 1,000 users on 1,000 addresses.
      WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN: '100000000',
      WANLLMDB_INGEST_RATE_LIMIT_PER_ADDRESS_PER_MIN: '100000000',
      WANLLMDB_MAX_CONNECTIONS_PER_ADDRESS: String(connections + 100),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // WLDB_BENCH_SERVER_LOG=FILE keeps the server's output (it is dropped otherwise).
  const keep = process.env.WLDB_BENCH_SERVER_LOG ? createWriteStream(process.env.WLDB_BENCH_SERVER_LOG) : undefined;
  for (const out of [child.stdout!, child.stderr!]) keep ? out.pipe(keep) : out.resume();
  // Log level warn hides the "listening" line; ask the health route instead.
  const port = await waitForListening(child, dataDir);
  return { child, port, stop: stopper(child) };
}

/** The server writes its HTTP port nowhere at warn level, so it is started at info for its first line. */
async function waitForListening(child: ChildProcess, _dataDir: string): Promise<number> {
  return waitForPort(child, /"http":"http:\/\/[^"]*:(\d+)"/, 'wanllmdb serve');
}

const BARE_MAIN = `
const cluster = require('node:cluster');
const [fastifyPath, bodyFile, procs] = process.argv.slice(1);
const body = require('node:fs').readFileSync(bodyFile);
if (cluster.isPrimary && Number(procs) > 1) {
  for (let i = 0; i < Number(procs); i++) cluster.fork();
  let n = 0;
  cluster.on('message', (w, m) => { if (m && m.port && ++n === 1) console.log('listening ' + m.port); });
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  const app = require(fastifyPath)({ logger: false });
  const ok = (req, reply) => { reply.header('content-type', 'application/json; charset=utf-8').send(body); };
  app.get('/api/v1/projects/:id/runs', ok);
  app.post('/api/v1/runs/:id/metrics', ok);
  app.listen({ host: '127.0.0.1', port: Number(process.env.BARE_PORT || 0) }).then(() => {
    const port = app.server.address().port;
    if (process.send) process.send({ port }); else console.log('listening ' + port);
  });
}
`;

async function startBare(bodyFile: string, procs: number): Promise<Proc> {
  const fastifyPath = join(root, 'node_modules/fastify');
  // Workers of a cluster share one port: the first picks it, the rest reuse it.
  const { port: freePort } = await new Promise<{ port: number }>((r) => {
    import('node:net').then(({ createServer }) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const a = s.address() as { port: number };
        s.close(() => r(a));
      });
    });
  });
  const child = spawn(process.execPath, ['-e', BARE_MAIN, fastifyPath, bodyFile, String(procs)], {
    env: { ...process.env, BARE_PORT: String(freePort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await waitForPort(child, /listening (\d+)/, 'bare fastify');
  return { child, port, stop: stopper(child) };
}

// ---------------------------------------------------------------------------
// Setup: users, keys, projects, runs

interface User {
  key: string;
  projectId: string;
  runId: string;
  step: number;
}

async function api(base: string, method: string, path: string, body?: unknown, token?: string): Promise<any> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(base + path, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as any;
    if (res.status === 429 && attempt < 20) {
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
      continue;
    }
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json.data;
  }
}

async function pool<T>(n: number, items: T[], fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

async function makeUsers(base: string): Promise<User[]> {
  const admin = await api(base, 'POST', '/api/v1/auth/login', ADMIN);
  const out: User[] = [];
  let done = 0;
  const started = Date.now();
  await pool(8, Array.from({ length: users }, (_, i) => i), async (i) => {
    const email = `user${i}@bench.test`;
    const password = `password-of-user-${i}`;
    await api(base, 'POST', '/api/v1/admin/users', { email, password, username: `user${i}` }, admin.accessToken);
    const tokens = await api(base, 'POST', '/api/v1/auth/login', { email, password });
    const { key } = await api(base, 'POST', '/api/v1/auth/api-keys', { name: 'bench' }, tokens.accessToken);
    const project = await api(base, 'POST', '/api/v1/projects', { name: `project-${i}` }, key);
    let runId = '';
    for (let r = 0; r < runsPerProject; r++) {
      const run = await api(base, 'POST', `/api/v1/projects/${project.id}/runs`, { name: `run-${r}`, config: { lr: 10 ** -(1 + (r % 4)), batch: 32 << (r % 3), model: 'tiny' } }, key);
      await api(base, 'PATCH', `/api/v1/runs/${run.id}/summary`, { summary: { loss: 1 / (r + 1), acc: r / runsPerProject } }, key);
      runId = run.id;
    }
    out[i] = { key, projectId: project.id, runId, step: 0 };
    if (++done % 100 === 0) log(`set up ${done}/${users} users (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  });
  return out;
}

// ---------------------------------------------------------------------------
// Load

type Kind = 'list' | 'ingest';

function requestFor(kind: Kind, u: User): { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: string } {
  const headers: Record<string, string> = { authorization: `Bearer ${u.key}` };
  if (kind === 'list') return { method: 'GET', path: `/api/v1/projects/${u.projectId}/runs?limit=${runsPerProject}`, headers };
  const step = u.step++;
  headers['content-type'] = 'application/json';
  return {
    method: 'POST',
    path: `/api/v1/runs/${u.runId}/metrics`,
    headers,
    body: JSON.stringify({ metrics: [{ name: 'loss', step, value: 1 / (step + 1) }, { name: 'acc', step, value: step / (step + 1) }] }),
  };
}

interface Outcome {
  latencies: number[];
  /** When each request was due (ms since the phase started), beside its latency. */
  dueAt?: number[];
  errors: number;
  firstError?: string;
}

async function send(client: Client, kind: Kind, u: User, out: Outcome, due: number): Promise<void> {
  try {
    const res = await client.request(requestFor(kind, u));
    const text = await res.body.text();
    if (res.statusCode >= 300) {
      out.errors++;
      out.firstError ??= `${res.statusCode} ${text.slice(0, 300)}`;
    }
  } catch (e) {
    out.errors++;
    out.firstError ??= String(e);
  }
  out.latencies.push(performance.now() - due);
  out.dueAt?.push(due);
}

/** P95 of each second of an open loop, to stderr: shows whether a tail is a burst or spread out. */
function logPerSecond(kind: string, o: Outcome, start: number): void {
  const seconds: number[][] = [];
  o.latencies.forEach((l, i) => (seconds[Math.floor((o.dueAt![i]! - start) / 1000)] ??= []).push(l));
  log(`open ${kind}, P95 ms by second: ${seconds.map((xs) => round(pct(xs ?? [], 0.95))).join(' ')}`);
}

function openClients(port: number): Client[] {
  return Array.from({ length: connections }, () => new Client(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000, connections: 1 } as never));
}

/** Each connection sends one request a second, on its own phase, for `warmup` + `seconds`; the outcome of each part. */
async function openLoop(clients: Client[], userList: User[], kind: Kind): Promise<{ warm: Outcome; steady: Outcome }> {
  const out: Outcome = { latencies: [], dueAt: [], errors: 0 };
  const start = performance.now() + 200;
  await Promise.all(clients.map(async (client, c) => {
    const u = userList[c % userList.length]!;
    const phase = (c / clients.length) * 1000;
    const pending: Promise<void>[] = [];
    for (let k = 0; k < warmup + seconds; k++) {
      const due = start + phase + k * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(send(client, kind, u, out, due)); // not awaited before the next is due: open loop
    }
    await Promise.all(pending);
  }));
  logPerSecond(kind, out, start);
  const warm: Outcome = { latencies: [], errors: 0 };
  const steady: Outcome = { latencies: [], errors: out.errors, ...(out.firstError ? { firstError: out.firstError } : {}) };
  out.latencies.forEach((l, i) => (out.dueAt![i]! - start < warmup * 1000 ? warm : steady).latencies.push(l));
  return { warm, steady };
}

/** Every connection sends back to back for `seconds`: throughput and the server's CPU. */
async function closedLoop(clients: Client[], userList: User[], kind: Kind, pid: number) {
  const out: Outcome = { latencies: [], errors: 0 };
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(clients.map(async (client, c) => {
    const u = userList[c % userList.length]!;
    while (performance.now() < end) {
      const due = performance.now();
      await send(client, kind, u, out, due);
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const n = out.latencies.length;
  return { requestsPerSecond: round(n / wall), serverCores: round(cpu / wall, 2), requestsPerCoreSecond: round(n / cpu), errors: out.errors, p95Ms: round(pct(out.latencies, 0.95), 1), firstError: out.firstError };
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;
const summarise = (o: Outcome) => ({
  requests: o.latencies.length,
  p50Ms: round(pct(o.latencies, 0.5), 1),
  p95Ms: round(pct(o.latencies, 0.95), 1),
  p99Ms: round(pct(o.latencies, 0.99), 1),
  errors: o.errors,
  ...(o.firstError ? { firstError: o.firstError } : {}),
});

// ---------------------------------------------------------------------------

async function main() {
  const dataDir = await mkdtemp(join(tmpdir(), 'wldb-api-load-'));
  let schema: string | undefined;
  let pgUrl: string | undefined;
  if (args.db === 'postgres') {
    schema = `wldb_bench_${randomBytes(5).toString('hex')}`;
    const u = new URL(PG_URL);
    u.searchParams.set('schema', schema);
    pgUrl = u.toString();
  }
  // Without --workers the server picks (one process per core since --workers exists; one before).
  const result: Record<string, unknown> = { bench: 'api-load', db: args.db, users, connections, seconds, warmup, runsPerProject, workers: workers ?? 'server default' };
  let server: Proc | undefined;
  let bare: Proc | undefined;
  const clientsToClose: Client[] = [];
  try {
    server = await startServer(dataDir, pgUrl);
    const base = `http://127.0.0.1:${server.port}`;
    log(`server on ${base} (${root}); setting up ${users} users × ${runsPerProject} runs`);
    const userList = await makeUsers(base);

    // The bytes a real list call answers, for the bare route to send.
    const sample = await fetch(base + requestFor('list', userList[0]!).path, { headers: { authorization: `Bearer ${userList[0]!.key}` } });
    const bodyFile = join(dataDir, 'list-body.json');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(bodyFile, Buffer.from(await sample.arrayBuffer()));

    const clients = openClients(server.port);
    clientsToClose.push(...clients);
    const kinds = args.kinds.split(',') as Kind[];
    for (const k of kinds) if (k !== 'list' && k !== 'ingest') throw new Error(`--kinds takes list and/or ingest, got ${k}`);
    if (phases.has('open')) {
      for (const kind of kinds) {
        log(`open loop: ${connections} connections × 1 req/s, ${kind}, ${warmup} s warm-up + ${seconds} s`);
        const { warm, steady } = await openLoop(clients, userList, kind);
        const w = summarise(warm);
        result[`open_${kind}`] = { ...summarise(steady), warmup: { seconds: warmup, p50Ms: w.p50Ms, p95Ms: w.p95Ms, p99Ms: w.p99Ms } };
      }
    }
    if (phases.has('saturation')) {
      for (const kind of kinds) {
        log(`saturation: ${connections} connections back to back, ${kind}, ${seconds} s`);
        result[`saturation_${kind}`] = await closedLoop(clients, userList, kind, server.child.pid!);
      }
    }
    await Promise.all(clients.map((c) => c.close()));
    clientsToClose.length = 0;
    await server.stop();
    server = undefined;

    if (phases.has('bare')) {
      bare = await startBare(bodyFile, workers ?? availableParallelism());
      const bareClients = openClients(bare.port);
      clientsToClose.push(...bareClients);
      log(`bare fastify route, same body, same load: ${seconds} s open loop, ${seconds} s back to back`);
      // The open loop against it is the generator's own floor: what a server that costs nothing would show.
      const open = phases.has('open') ? summarise((await openLoop(bareClients, userList, 'list')).steady) : undefined;
      const sat = await closedLoop(bareClients, userList, 'list', bare.child.pid!);
      result.bare_fastify = { ...sat, ...(open ? { openP95Ms: open.p95Ms, openP99Ms: open.p99Ms } : {}) };
      await Promise.all(bareClients.map((c) => c.close()));
      clientsToClose.length = 0;
      const list = result.saturation_list as { requestsPerCoreSecond: number } | undefined;
      const ingest = result.saturation_ingest as { requestsPerCoreSecond: number } | undefined;
      if (list) result.listPerCoreVsBare = round(list.requestsPerCoreSecond / sat.requestsPerCoreSecond, 3);
      if (ingest) result.ingestPerCoreVsBare = round(ingest.requestsPerCoreSecond / sat.requestsPerCoreSecond, 3);
    }
  } finally {
    await Promise.all(clientsToClose.map((c) => c.destroy()));
    await server?.stop();
    await bare?.stop();
    await rm(dataDir, { recursive: true, force: true });
    if (schema) {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
