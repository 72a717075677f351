import 'reflect-metadata';
import { basename, isAbsolute } from 'node:path';
import { AsyncSeriesHook } from 'tapable';
import { container as rootContainer, type DependencyContainer, type InjectionToken } from 'tsyringe';
import type { ServiceRef } from '@wanllmdb/proto';
import { loadConfig, type WanllmdbConfig } from '../config/config.js';
import { Errors, WldbError } from '../errors.js';
import { createEventBus, createJobQueue } from '../messaging/create-messaging.js';
import type { EventBus } from '../messaging/event-bus.js';
import type { IpcEndpoint } from '../messaging/cluster-event-bus.js';
import type { JobQueue } from '../messaging/job-queue.js';
import { LocalAuth, type Auth } from '../rpc/auth.js';
import type { GrpcServer } from '../rpc/grpc-server.js';
import type { HttpGateway } from '../rpc/http-gateway.js';
import { ResourceDirectory } from '../rpc/resources.js';
import { RpcHost } from '../rpc/rpc-host.js';
import type { BlobStore } from '../storage/blob/blob-store.js';
import { createBlobStore } from '../storage/blob/create-blob-store.js';
import { createMetadataStore } from '../storage/metadata/create-metadata-store.js';
import type { Migration, MetadataStore } from '../storage/metadata/metadata-store.js';
import { systemClock, type Clock } from './clock.js';
import type { Plugin, PluginHook, PluginHooks, PluginRegistrar } from './define-plugin.js';
import { createLogger, type Logger } from './logger.js';
import { orderPlugins } from './plugin-order.js';
import { Tokens } from './tokens.js';
import { ACCESS_EPOCH_NAMESPACE, accessEpochMigrations } from '../rpc/access-epoch.js';

type Phase = keyof PluginHooks;
const PHASES: readonly Phase[] = ['configure', 'register', 'migrate', 'start', 'beforeStop', 'stop'];
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
 * The plugin host. It owns the lifecycle hooks (plugins tap, only the kernel
 * calls), the root container, the storage ports and the RPC host.
 *
 * start: register → configure → (stores) → register hook → migrate → start → listen
 * stop:  drain RPCs → beforeStop (reverse) → stop (reverse) → close stores
 */
export class Kernel {
  readonly hooks = Object.freeze({
    configure: new AsyncSeriesHook<[WanllmdbConfig]>(['config']),
    register: new AsyncSeriesHook<[]>([]),
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

  constructor(private readonly opts: KernelOptions) {
    this.plugins = orderPlugins(opts.plugins);
    this.config = { ...loadConfig(), ...opts.config } as WanllmdbConfig;
    this.logger = opts.services?.logger ?? createLogger(this.config.logLevel);
    // Plugins define their resource types while they register.
    this.container.register(Tokens.Resources, { useValue: new ResourceDirectory() });
  }

  get rpcHost(): RpcHost {
    if (!this.rpc) throw Errors.KERNEL_STATE('The kernel has not started; call start() first.');
    return this.rpc;
  }

  resolve<T>(token: InjectionToken<T>): T {
    return this.container.resolve(token);
  }

  async start(): Promise<Listening | undefined> {
    if (this.state !== 'new') throw Errors.KERNEL_STATE(`start() was called on a kernel that is ${this.state}. Make a new Kernel to start again.`);
    this.state = 'starting';
    try {
      const registrations = await this.registerPlugins();
      await this.runHook('configure', this.config);
      await this.createRootServices();
      for (const reg of registrations) reg.resolveServices();
      await this.runHook('register');
      // Core's own tables first: plugins' migrations add triggers that write them.
      await this.resolve(Tokens.MetadataStore).migrate(ACCESS_EPOCH_NAMESPACE, accessEpochMigrations);
      for (const reg of registrations) {
        if (reg.migrations.length) {
          await this.resolve(Tokens.MetadataStore).migrate(reg.plugin.id, reg.migrations).catch((e) => {
            throw this.pluginFailure(reg.plugin, 'migrate', e);
          });
        }
      }
      await this.runHook('migrate');
      this.rpc = new RpcHost(this.resolve(Tokens.Auth), this.logger);
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
    this.grpc = new GrpcServer(this.rpcHost, this.logger, { requestTimeoutMs: c.requestTimeoutMs, idleTimeoutMs: c.idleTimeoutMs, connections });
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
    this.container.register(Tokens.Config, { useValue: c });
    this.container.register(Tokens.Logger, { useValue: this.logger });
    this.container.register(Tokens.Clock, { useValue: s.clock ?? systemClock });
    this.container.register(Tokens.MetadataStore, { useValue: metadataStore });
    this.container.register(Tokens.BlobStore, { useValue: blobStore });
    this.container.register(Tokens.EventBus, { useValue: eventBus });
    this.container.register(Tokens.JobQueue, { useValue: jobQueue });
    // A plugin (auth) may have provided Tokens.Auth in register(); otherwise one local user.
    if (s.auth) this.container.register(Tokens.Auth, { useValue: s.auth });
    else if (!this.container.isRegistered(Tokens.Auth)) this.container.register(Tokens.Auth, { useValue: new LocalAuth() });
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

  private async registerPlugins(): Promise<Registration[]> {
    const regs: Registration[] = [];
    for (const [index, p] of this.plugins.entries()) {
      const reg = new Registration(p, this, index);
      await Promise.resolve(p.register(reg.registrar)).catch((e) => {
        throw this.pluginFailure(p, 'register', e);
      });
      reg.closeRegistration();
      regs.push(reg);
    }
    // Hooks are declared once and then frozen: a tap after start-up is a bug.
    for (const phase of PHASES) {
      const hook = this.hooks[phase] as unknown as Record<'tap' | 'tapAsync' | 'tapPromise', unknown>;
      hook.tap = hook.tapAsync = hook.tapPromise = frozen(phase);
    }
    return regs;
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
    throw Errors.KERNEL_STATE(`Cannot tap the "${phase}" hook after plugins have registered. Tap hooks inside register(r).`);
  };
}

/** One plugin's view of the kernel while it registers. */
class Registration {
  readonly migrations: Migration[] = [];
  readonly services: { fullName: string; handlers: Record<string, unknown> }[] = [];
  private readonly pending: { fullName: string; make: unknown }[] = [];
  private open = true;
  readonly registrar: PluginRegistrar;

  constructor(
    readonly plugin: Plugin,
    kernel: Kernel,
    index: number,
  ) {
    const child = kernel.container.createChildContainer();
    const guard = (what: string) => {
      if (!this.open) throw Errors.KERNEL_STATE(`Plugin "${plugin.id}" called ${what} after register() returned. Declare everything inside register(r).`);
    };
    const hook = (phase: Phase): PluginHook<any[]> => ({
      tapPromise: (_name, fn) => {
        guard(`hooks.${phase}.tapPromise`);
        kernel.tapFor(plugin, index, phase, fn);
      },
    });
    this.registrar = {
      pluginId: plugin.id,
      container: child,
      logger: kernel.logger.child({ plugin: plugin.id }),
      hooks: { configure: hook('configure'), register: hook('register'), migrate: hook('migrate'), start: hook('start'), beforeStop: hook('beforeStop'), stop: hook('stop') },
      resolve: <T>(token: InjectionToken<T>) => child.resolve(token),
      migrations: (list) => {
        guard('migrations()');
        this.migrations.push(...list);
      },
      service: <H>(ref: ServiceRef<H>, handlers: H | (() => H)) => {
        guard('service()');
        this.pending.push({ fullName: ref.fullName, make: handlers });
      },
      provide: (token, value) => {
        guard('provide()');
        kernel.container.register(token, { useValue: value });
      },
      ui: (contribution) => {
        guard('ui()');
        kernel.addUiModules(plugin.id, contribution.modules);
      },
    };
  }

  closeRegistration(): void {
    this.open = false;
  }

  /** Handler factories run once root services exist. */
  resolveServices(): void {
    for (const s of this.pending) {
      const handlers = typeof s.make === 'function' ? (s.make as () => unknown)() : s.make;
      this.services.push({ fullName: s.fullName, handlers: handlers as Record<string, unknown> });
    }
  }
}
