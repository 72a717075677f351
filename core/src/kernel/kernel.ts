import 'reflect-metadata';
import { basename, isAbsolute } from 'node:path';
import { AsyncSeriesHook } from 'tapable';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { loadContractRoot, type ContractSource, type ServiceRef } from '@wanllmdb/proto';
import { loadConfig, type WanllmdbConfig } from '../config/config.js';
import { Errors, WldbError } from '../errors.js';
import { createEventBus, createJobQueue } from '../messaging/create-messaging.js';
import type { EventBus } from '../messaging/event-bus.js';
import type { IpcEndpoint } from '../messaging/cluster-event-bus.js';
import type { JobQueue } from '../messaging/job-queue.js';
import { LocalAuth, type Auth } from '../rpc/auth.js';
import type { GrpcServer } from '../rpc/grpc-server.js';
import type { HttpGateway } from '../rpc/http-gateway.js';
import { inProcessRpc } from '../rpc/in-process.js';
import { ResourceDirectory } from '../rpc/resources.js';
import { Contract } from '../rpc/contract.js';
import { RpcHost } from '../rpc/rpc-host.js';
import type { BlobStore } from '../storage/blob/blob-store.js';
import { createBlobStore } from '../storage/blob/create-blob-store.js';
import { createMetadataStore } from '../storage/metadata/create-metadata-store.js';
import type { Migration, MetadataStore } from '../storage/metadata/metadata-store.js';
import { systemClock, type Clock } from './clock.js';
import { PluginHost } from './external/plugin-host.js';
import type { PhaseWork, Plugin, PluginContext } from './define-plugin.js';
import { createLogger, type Logger } from './logger.js';
import { orderPlugins } from './plugin-order.js';
import { coreServices, type Ref } from './refs.js';
import { resolveSettings } from './settings.js';
import { ACCESS_EPOCH_NAMESPACE, accessEpochMigrations } from '../rpc/access-epoch.js';

/** Lifecycle phases after init; plugins add work through their context, only the kernel calls. */
type Phase = 'migrate' | 'start' | 'beforeStop' | 'stop';
const PHASES: readonly Phase[] = ['migrate', 'start', 'beforeStop', 'stop'];
/** Phases that run in reverse dependency order. */
const REVERSED: ReadonlySet<Phase> = new Set(['beforeStop', 'stop']);

export interface KernelOptions {
  plugins: readonly Plugin[];
  /** A full config, or overrides on top of `loadConfig()` (env and defaults). */
  config?: Partial<WanllmdbConfig>;
  /** Ready-made root services (tests, the embedded SDK); the rest are made from config. */
  services?: Partial<{
    metadataStore: MetadataStore;
    blobStore: BlobStore;
    eventBus: EventBus;
    jobQueue: JobQueue;
    auth: Auth;
    logger: Logger;
    clock: Clock;
  }>;
  /** Serve gRPC and HTTP (`wanllmdb serve`); false for embedded use. */
  listen?: boolean;
  /** Where plugin settings are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** A built web UI (index.html + assets) to serve at `/` when listening. */
  uiDir?: string;
  /**
   * One of several server processes on the same data (`serve --workers`):
   * the channel to the primary, which relays in-process events between them.
   */
  ipc?: IpcEndpoint;
}

export interface Listening {
  grpcPort: number;
  httpPort: number;
}

type State = 'new' | 'starting' | 'started' | 'stopping' | 'stopped' | 'failed';

/**
 * The plugin host. It owns the lifecycle hooks (plugins add work through
 * their context, only the kernel calls), the root container, the storage
 * ports and the RPC host.
 *
 * start: settings (all plugins) → root services → per plugin in dependency
 *        order: init, then its migrations → (all plugins) migrate hook →
 *        the RPC host mounts every service → start (dependency order) → listen
 * stop:  drain RPCs → beforeStop (reverse) → stop (reverse) → close stores
 */
export class Kernel {
  readonly hooks = Object.freeze({
    migrate: new AsyncSeriesHook<[]>([]),
    start: new AsyncSeriesHook<[]>([]),
    beforeStop: new AsyncSeriesHook<[]>([]),
    stop: new AsyncSeriesHook<[]>([]),
  });
  readonly container: DependencyContainer = rootContainer.createChildContainer();
  readonly config: WanllmdbConfig;
  readonly logger: Logger;
  private readonly plugins: Plugin[];
  private rpc?: RpcHost;
  private grpc?: GrpcServer;
  private http?: HttpGateway;
  private state: State = 'new';
  private started: Plugin[] = [];
  private readonly owned: { close(): Promise<void> }[] = [];
  private stopping?: Promise<void>;
  /** UI modules plugins contributed (`r.ui`). */
  private readonly uiModules: { plugin: string; path: string }[] = [];

  /** The Auth a plugin provided (`ctx.provideAuth`), if one did. */
  private providedAuth?: Auth;

  constructor(private readonly opts: KernelOptions) {
    this.plugins = orderPlugins(opts.plugins);
    this.config = { ...loadConfig(), ...opts.config } as WanllmdbConfig;
    this.logger = opts.services?.logger ?? createLogger(this.config.logLevel);
  }

  get rpcHost(): RpcHost {
    if (!this.rpc) throw Errors.KERNEL_STATE('The kernel has not started; call start() first.');
    return this.rpc;
  }

  /** The authentication and authorisation every call goes through (a plugin's, or the local user's). */
  get auth(): Auth {
    return this.rpcHost.auth;
  }

  /** The value of a ref: a root service, or an API a started plugin provided. */
  get<T>(ref: Ref<T>): T {
    if (!this.container.isRegistered(ref.id)) {
      throw Errors.KERNEL_STATE(`Nothing provides "${ref.id}" here: ${ref.owner === 'core' ? 'the kernel has not started' : `plugin "${ref.owner}" is not loaded or has not started`}.`);
    }
    return this.container.resolve<T>(ref.id);
  }

  async start(): Promise<Listening | undefined> {
    if (this.state !== 'new') throw Errors.KERNEL_STATE(`start() was called on a kernel that is ${this.state}. Make a new Kernel to start again.`);
    this.state = 'starting';
    try {
      // Every plugin's settings first: a bad value fails start before anything is opened.
      const env = this.opts.env ?? process.env;
      const settings = this.plugins.map((p) => resolveSettings(p.id, p.settings, env));
      await this.createRootServices();
      const db = this.get(coreServices.db);
      // Core's own tables first: plugins' migrations add triggers that write them.
      await db.migrate(ACCESS_EPOCH_NAMESPACE, accessEpochMigrations);
      const registrations: Registration[] = [];
      for (const [index, p] of this.plugins.entries()) {
        const reg = new Registration(p, this, index, settings[index]!);
        try {
          await p.init(reg.context);
        } catch (e) {
          throw this.pluginFailure(p, 'init', e);
        }
        reg.close();
        this.checkProvided(p);
        if (reg.migrations.length) {
          await db.migrate(p.id, reg.migrations).catch((e) => {
            throw this.pluginFailure(p, 'migrate', e);
          });
        }
        registrations.push(reg);
      }
      // Work is declared once, during init: a tap after that is a bug.
      for (const phase of PHASES) {
        const hook = this.hooks[phase] as unknown as Record<'tap' | 'tapAsync' | 'tapPromise', unknown>;
        hook.tap = hook.tapAsync = hook.tapPromise = frozen(phase);
      }
      await this.runHook('migrate');
      const contract = new Contract(loadContractRoot(this.contractSources()));
      // A credential of an out-of-process plugin is the kernel's to check; every other caller goes to the Auth.
      const auth = this.get(coreServices.pluginHost).wrapAuth(this.opts.services?.auth ?? this.providedAuth ?? new LocalAuth());
      this.rpc = new RpcHost(auth, this.logger, contract);
      for (const reg of registrations) for (const s of reg.services) this.rpc.mount(reg.plugin.id, s.fullName, s.handlers);
      this.started = [];
      for (const p of this.plugins) {
        await this.runPluginTaps('start', p);
        this.started.push(p);
      }
      let listening: Listening | undefined;
      if (this.opts.listen) listening = await this.listen();
      this.state = 'started';
      return listening;
    } catch (err) {
      this.state = 'failed';
      await this.shutdown().catch((e) => this.logger.error({ err: e }, 'cleanup after a failed start failed'));
      throw err;
    }
  }

  /**
   * Calls a mounted method in process (embedded mode), through the same
   * authorisation and handler as gRPC and HTTP.
   */
  async call<Res = unknown>(fullMethod: string, request: unknown, headers: Record<string, string | undefined> = {}): Promise<Res> {
    const m = this.rpcHost.method(fullMethod);
    if (!m) throw Errors.RPC_SERVICE_UNKNOWN(`No mounted method ${fullMethod}. Mounted: ${this.rpcHost.mounted().map((x) => x.fullName).join(', ')}.`);
    return (await this.rpcHost.invoke(m, request, { transport: 'local', headers })) as Res;
  }

  /** Graceful stop; safe to call more than once. */
  async stop(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Stops gracefully on SIGTERM/SIGINT, then exits (a second signal exits at once). */
  handleSignals(exit: (code: number) => void = (c) => process.exit(c)): void {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) return exit(130);
      received = true;
      this.logger.info({ signal }, 'stopping: draining calls in flight');
      this.stop().then(
        () => exit(0),
        (err) => {
          this.logger.error({ err }, 'graceful stop failed');
          exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  private async listen(): Promise<Listening> {
    const c = this.config;
    // The transports (grpc-js, Fastify) load only when the kernel serves, not in embedded use.
    const [{ GrpcServer }, { HttpGateway }, { ConnectionLimits }] = await Promise.all([
      import('../rpc/grpc-server.js'),
      import('../rpc/http-gateway.js'),
      import('../rpc/connection-limits.js'),
    ]);
    // One count for both ports: together they must stay below the open-file limit.
    const connections = ConnectionLimits.fromConfig(c, this.logger, () => !this.rpcHost.isDraining);
    this.grpc = new GrpcServer(this.rpcHost, this.logger, { requestTimeoutMs: c.requestTimeoutMs, idleTimeoutMs: c.idleTimeoutMs, connections, contractSources: this.contractSources() });
    this.http = new HttpGateway(this.rpcHost, this.logger, {
      bodyLimitBytes: c.bodyLimitBytes,
      corsOrigins: c.corsOrigins,
      uiDir: this.opts.uiDir,
      uiModules: this.uiModules,
      timeBounds: c,
      connections,
    });
    this.http.mountRoutes();
    const grpcPort = await this.grpc.listen(c.host, c.grpcPort).catch((e: Error) => {
      throw Errors.CONFIG_INVALID(`Cannot serve gRPC on ${c.host}:${c.grpcPort} (${e.message}). Pick another --port or stop what uses it.`);
    });
    const httpPort = await this.http.listen(c.host, c.httpPort).catch((e: Error) => {
      throw Errors.CONFIG_INVALID(`Cannot serve HTTP on ${c.host}:${c.httpPort} (${e.message}). Pick another --http-port or stop what uses it.`);
    });
    this.logger.info({ grpc: `${c.host}:${grpcPort}`, http: `http://${c.host}:${httpPort}`, data: c.dataDir }, 'wanllmdb is serving');
    return { grpcPort, httpPort };
  }

  private async shutdown(): Promise<void> {
    this.state = 'stopping';
    const timeout = this.config.shutdownTimeoutMs;
    this.grpc?.setNotServing();
    if (this.rpc) {
      const left = await this.rpc.drain(timeout);
      if (left) this.logger.warn({ calls: left }, 'calls still running after the shutdown timeout were cut');
    }
    await Promise.all([this.grpc?.close(1000), this.http?.close()]);
    const errors: unknown[] = [];
    for (const phase of ['beforeStop', 'stop'] as const) {
      for (const p of [...this.started].reverse()) await this.runPluginTaps(phase, p).catch((e) => errors.push(e));
    }
    for (const s of this.owned.reverse()) await s.close().catch((e) => errors.push(e));
    this.state = 'stopped';
    if (errors.length) throw errors[0];
  }

  private async createRootServices(): Promise<void> {
    const s = this.opts.services ?? {};
    const c = this.config;
    const own = <T extends { close(): Promise<void> }>(x: T) => (this.owned.push(x), x);
    const metadataStore = s.metadataStore ?? own(await createMetadataStore(c.db));
    const blobStore = s.blobStore ?? own(await createBlobStore(c.blobs));
    const eventBus = s.eventBus ?? own(await createEventBus(c.bus, { logger: this.logger, ipc: this.opts.ipc }));
    const jobQueue = s.jobQueue ?? own(await createJobQueue(c.bus, { logger: this.logger }));
    const values: { [K in keyof typeof coreServices]: (typeof coreServices)[K] extends Ref<infer T> ? T : never } = {
      config: c,
      logger: this.logger,
      clock: s.clock ?? systemClock,
      db: metadataStore,
      blobs: blobStore,
      events: eventBus,
      jobs: jobQueue,
      resources: new ResourceDirectory(),
      rpc: inProcessRpc('kernel', () => this.rpcHost),
      pluginHost: own(new PluginHost(() => this.rpcHost, c, this.logger.child({ component: 'plugin-host' }), () => this.contractSources())),
    };
    for (const [name, ref] of Object.entries(coreServices)) this.container.register(ref.id, { useValue: values[name as keyof typeof values] });
  }

  /** The plugins' own .proto folders, loaded beside core's. */
  private contractSources(): ContractSource[] {
    return this.plugins.flatMap((p) => (p.proto ? [{ dir: p.proto }] : []));
  }

  /** Every ref this plugin owns that a loaded plugin depends on must have been provided in its init. */
  private checkProvided(p: Plugin): void {
    for (const other of this.plugins) {
      for (const ref of Object.values(other.deps)) {
        if (ref.owner !== p.id || this.container.isRegistered(ref.id)) continue;
        throw Errors.PLUGIN_INVALID(`Plugin "${other.id}" depends on "${ref.id}", but its owner "${p.id}" did not provide it in init(). Call ctx.provide(ref, value) in "${p.id}".`, [
          { field: p.id, message: `did not provide ${ref.id}` },
        ]);
      }
    }
  }

  private pluginFailure(p: Plugin, phase: string, err: unknown): WldbError {
    if (err instanceof WldbError && err.code === Errors.PLUGIN_FAILED.code) return err;
    const why = err instanceof WldbError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
    return Errors.PLUGIN_FAILED(`Plugin "${p.id}" failed in ${phase}: ${why}`, [{ field: p.id, message: phase }], err);
  }

  /** Runs one phase for all plugins, in dependency order (or reverse for stop phases). */
  private async runHook(phase: Phase, ...args: unknown[]): Promise<void> {
    await (this.hooks[phase] as AsyncSeriesHook<unknown[]>).promise(...args);
  }

  /** Runs only one plugin's taps of a phase (start/stop go plugin by plugin to track what started). */
  private async runPluginTaps(phase: Phase, p: Plugin): Promise<void> {
    const hook = this.hooks[phase] as AsyncSeriesHook<[]>;
    for (const tap of hook.taps.filter((t) => t.name === p.id)) await (tap.fn as () => Promise<void>)();
  }

  /** @internal used by Registration */
  addUiModules(plugin: string, modules: readonly string[]): void {
    for (const path of modules) {
      if (!isAbsolute(path) || !path.endsWith('.js')) throw Errors.PLUGIN_INVALID(`Plugin "${plugin}" contributes UI module ${JSON.stringify(path)}: give absolute paths of built .js files.`);
      if (this.uiModules.some((m) => m.plugin === plugin && basename(m.path) === basename(path))) {
        throw Errors.PLUGIN_DUPLICATE(`Plugin "${plugin}" contributes two UI modules named ${basename(path)}. Give each file a unique name.`);
      }
      this.uiModules.push({ plugin, path });
    }
  }

  /** @internal used by Registration */
  provide(p: Plugin, ref: Ref<unknown>, value: unknown): void {
    if (ref.owner !== p.id) {
      throw Errors.PLUGIN_INVALID(`Plugin "${p.id}" cannot provide "${ref.id}": it belongs to ${ref.owner === 'core' ? 'the kernel' : `plugin "${ref.owner}"`}. Provide refs made with createApiRef({ plugin: "${p.id}" }).`);
    }
    if (this.container.isRegistered(ref.id)) throw Errors.PLUGIN_DUPLICATE(`Plugin "${p.id}" provides "${ref.id}" twice.`);
    this.container.register(ref.id, { useValue: value });
  }

  /** @internal used by Registration */
  provideAuth(p: Plugin, auth: Auth): void {
    if (this.providedAuth) throw Errors.PLUGIN_DUPLICATE(`Plugin "${p.id}" provides the kernel's Auth, which another plugin already provides. Load one auth plugin.`);
    this.providedAuth = auth;
  }

  /** @internal used by Registration */
  tapFor(p: Plugin, index: number, phase: Phase, fn: (...args: unknown[]) => Promise<void> | void): void {
    const hook = this.hooks[phase] as AsyncSeriesHook<unknown[]>;
    hook.tapPromise({ name: p.id, stage: REVERSED.has(phase) ? -index : index }, async (...args: unknown[]) => {
      try {
        await fn(...args);
      } catch (e) {
        throw this.pluginFailure(p, phase, e);
      }
    });
  }
}

function frozen(phase: string) {
  return () => {
    throw Errors.KERNEL_STATE(`Cannot add "${phase}" work after the plugins' init. Declare it inside init(ctx).`);
  };
}

/** One plugin's view of the kernel while its init runs. */
class Registration {
  readonly migrations: Migration[] = [];
  readonly services: { fullName: string; handlers: Record<string, unknown> }[] = [];
  private open = true;
  readonly context: PluginContext;

  constructor(
    readonly plugin: Plugin,
    kernel: Kernel,
    index: number,
    settings: PluginContext['settings'],
  ) {
    const logger = kernel.logger.child({ plugin: plugin.id });
    // The plugin's own container: the logger ref resolves to its child logger.
    const child: DependencyContainer = kernel.container.createChildContainer();
    child.register(coreServices.logger.id, { useValue: logger });
    child.register(coreServices.rpc.id, { useValue: inProcessRpc(plugin.id, () => kernel.rpcHost) });
    const deps: Record<string, unknown> = {};
    for (const [name, ref] of Object.entries(plugin.deps)) deps[name] = child.resolve(ref.id);
    const guard = (what: string) => {
      if (!this.open) throw Errors.KERNEL_STATE(`Plugin "${plugin.id}" called ${what} after init() returned. Declare everything inside init(ctx).`);
    };
    const phase = (name: Phase) => (work: PhaseWork) => {
      guard(`on${name[0]!.toUpperCase()}${name.slice(1)}()`);
      kernel.tapFor(plugin, index, name, work);
    };
    this.context = Object.freeze({
      pluginId: plugin.id,
      deps: Object.freeze(deps),
      settings,
      logger,
      migrations: (list: readonly Migration[]) => {
        guard('migrations()');
        this.migrations.push(...list);
      },
      service: <H>(ref: ServiceRef<H>, handlers: H) => {
        guard('service()');
        this.services.push({ fullName: ref.fullName, handlers: handlers as Record<string, unknown> });
      },
      provide: <T>(ref: Ref<T>, value: T) => {
        guard('provide()');
        kernel.provide(plugin, ref, value);
      },
      provideAuth: (auth: Auth) => {
        guard('provideAuth()');
        kernel.provideAuth(plugin, auth);
      },
      ui: (contribution: { modules: readonly string[] }) => {
        guard('ui()');
        kernel.addUiModules(plugin.id, contribution.modules);
      },
      onMigrated: phase('migrate'),
      onStart: phase('start'),
      onBeforeStop: phase('beforeStop'),
      onStop: phase('stop'),
    }) as PluginContext;
  }

  close(): void {
    this.open = false;
  }
}
