import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContractSource } from '@wanllmdb/proto';
import type { WanllmdbConfig } from '../../config/config.js';
import { Errors } from '../../errors.js';
import { permissionMatches, type Auth, type AuthRequest, type CallerInfo, type Principal } from '../../rpc/auth.js';
import type { GrpcServer } from '../../rpc/grpc-server.js';
import type { RpcHost } from '../../rpc/rpc-host.js';
import type { Logger } from '../logger.js';

/** What `status()` tells about one out-of-process plugin. */
export interface PluginProcessStatus {
  plugin: string;
  state: 'starting' | 'serving' | 'restarting' | 'stopping' | 'stopped';
  /** The running program's process id (0 when none runs). */
  pid: number;
  /** How many times the kernel started the program again after it died or stopped answering. */
  restarts: number;
  /** How the previous program ended ('' before the first restart): `exit 1`, `signal SIGKILL`, `unhealthy`. */
  lastExit: string;
}

interface Credential {
  plugin: string;
  principal: Principal;
}

const CREDENTIAL_PREFIX = 'wldbp_';
/** The header a plugin adds to a call back into the kernel to act as the caller of the call it is serving. */
export const CALL_TOKEN_HEADER = 'x-wanllmdb-call-token';

/**
 * The kernel's side of out-of-process plugins (ADR 0019), one per kernel:
 *
 * - the unix socket on which plugin programs call back into the kernel — the
 *   same RPC host as gRPC and HTTP, so the same authorisation and audit;
 * - each program's credential, made fresh at every (re)start and revoked
 *   when it ends; with it a program acts as its own service principal
 *   (`plugin:<id>`), narrowed to the permissions its manifest declares;
 * - call tokens: while the kernel forwards a call to a program, a token that
 *   lets the program's calls back act as that call's caller, and nothing more.
 *
 * Credentials are taken on the plugins' socket only, never on the public ports.
 */
export class PluginHost {
  private readonly credentials = new Map<string, Credential>();
  private readonly delegations = new Map<string, Credential>();
  private readonly processes = new Map<string, () => PluginProcessStatus>();
  private server?: Promise<GrpcServer>;
  private dir?: string;

  constructor(
    private readonly rpcHost: () => RpcHost,
    private readonly config: WanllmdbConfig,
    private readonly logger: Logger,
    private readonly contractSources: () => ContractSource[],
  ) {}

  /** A private folder (mode 0700) for this kernel's sockets; short, since a unix socket path has ~100 bytes. */
  socketDir(): string {
    this.dir ??= mkdtempSync(join(tmpdir(), 'wldb-'));
    return this.dir;
  }

  /** `unix:<path>` of the kernel's socket for plugins; it is opened on first use. */
  async kernelAddress(): Promise<string> {
    const path = join(this.socketDir(), 'kernel.sock');
    this.server ??= (async () => {
      const { GrpcServer } = await import('../../rpc/grpc-server.js');
      const c = this.config;
      const server = new GrpcServer(this.rpcHost(), this.logger, { requestTimeoutMs: c.requestTimeoutMs, idleTimeoutMs: c.idleTimeoutMs, contractSources: this.contractSources() });
      await server.listenUnix(path);
      return server;
    })();
    await this.server;
    return `unix:${path}`;
  }

  /** A new credential for a program of `plugin`; its calls back act as `plugin:<id>` within `permissions`. */
  issue(plugin: string, permissions: readonly string[]): string {
    const token = `${CREDENTIAL_PREFIX}${randomBytes(32).toString('base64url')}`;
    const principal: Principal = Object.freeze({
      id: `plugin:${plugin}`,
      kind: 'service',
      name: `plugin ${plugin}`,
      orgId: '',
      superuser: true,
      method: 'api_key',
      scopes: Object.freeze([...permissions]),
      credentialId: `plugin:${plugin}`,
    });
    this.credentials.set(token, { plugin, principal });
    return token;
  }

  revoke(token: string): void {
    this.credentials.delete(token);
  }

  /** A token that lets `plugin`'s calls back act as `principal` until `end()` is called (when the forwarded call ends). */
  delegate(plugin: string, principal: Principal): { token: string; end(): void } {
    const token = randomBytes(24).toString('base64url');
    this.delegations.set(token, { plugin, principal });
    return { token, end: () => this.delegations.delete(token) };
  }

  /** @internal a plugin process reports here so `status()` lists it. */
  track(plugin: string, status: () => PluginProcessStatus): void {
    this.processes.set(plugin, status);
  }

  /** Every out-of-process plugin's process: state, pid, restarts. */
  status(): PluginProcessStatus[] {
    return [...this.processes.values()].map((s) => s());
  }

  /**
   * Wraps the kernel's Auth: a plugin credential on the plugins' socket is
   * the plugin's principal (or, with a call token, the forwarded call's
   * caller); every other caller goes to `inner` as before.
   */
  wrapAuth(inner: Auth): Auth {
    const host = this;
    return {
      async authenticate(caller: CallerInfo): Promise<Principal> {
        const bearer = /^Bearer\s+(\S+)$/i.exec(caller.headers.authorization ?? '')?.[1];
        if (!bearer?.startsWith(CREDENTIAL_PREFIX)) return inner.authenticate(caller);
        const cred = host.credentials.get(bearer);
        if (!cred || !host.onPluginSocket(caller.address)) {
          throw Errors.UNAUTHENTICATED('This plugin credential is not valid here: it is revoked when the plugin program ends, and taken only on the kernel socket given in WANLLMDB_KERNEL_ADDRESS.');
        }
        const callToken = caller.headers[CALL_TOKEN_HEADER];
        if (!callToken) return cred.principal;
        if (caller.streaming) {
          throw Errors.UNAUTHENTICATED(`A ${CALL_TOKEN_HEADER} acts for its caller only in unary calls: a stream could outlive the call that gave it. Call ${caller.method} as the plugin (without the header).`);
        }
        const d = host.delegations.get(callToken);
        if (!d || d.plugin !== cred.plugin) {
          throw Errors.UNAUTHENTICATED(`The ${CALL_TOKEN_HEADER} is not valid: it acts for a call's caller only while that call runs, and only for the plugin that received it.`);
        }
        return d.principal;
      },
      async authorize(req: AuthRequest) {
        const p = req.principal;
        if (p.id.startsWith('plugin:') && p.scopes && req.permission !== 'public' && !p.scopes.some((s) => permissionMatches(s, req.permission))) {
          throw Errors.PERMISSION_DENIED(
            `Plugin "${p.id.slice('plugin:'.length)}" may call only with the permissions its manifest declares (${p.scopes.join(', ') || 'none'}). Add "${req.permission}" to "permissions" in its wanllmdb-plugin.json, or call for the caller with ${CALL_TOKEN_HEADER}.`,
          );
        }
        return inner.authorize(req);
      },
      access: (principal, permission) => inner.access(principal, permission),
      ...(inner.audit ? { audit: inner.audit.bind(inner) } : {}),
    };
  }

  private onPluginSocket(address: string): boolean {
    return !!this.dir && address === `unix:${join(this.dir, 'kernel.sock')}`;
  }

  async close(): Promise<void> {
    const server = await this.server?.catch(() => undefined);
    await server?.close(1000);
    this.credentials.clear();
    this.delegations.clear();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
