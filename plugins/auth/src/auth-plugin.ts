import { definePlugin, Errors, isId, Tokens, type Auth } from '@wanllmdb/core';
import { auth } from '@wanllmdb/proto';
import { Accounts } from './accounts.js';
import { AuthAdminToken, type AuthAdmin } from './auth-admin.js';
import { adminHandlers } from './admin-service.js';
import { AuditLog } from './audit-log.js';
import { auditHandlers } from './audit-service.js';
import { authHandlers } from './auth-service.js';
import type { AuthDeps } from './deps.js';
import { authMigrations } from './migrations.js';
import { orgHandlers } from './org-service.js';
import { RateLimits, rateLimitsFrom, type RateLimitOptions } from './rate-limits.js';
import { AuthRepository } from './repository.js';
import { DEFAULT_SCRYPT_LN, makeDummyHash } from './secrets.js';
import { Sessions } from './sessions.js';
import { TokenAuth } from './token-auth.js';
import { Problems, SLUG } from './validate.js';

export interface AuthPluginOptions {
  /** scrypt cost as log2(N); default WANLLMDB_SCRYPT_LN or 15. Tests use a low one. */
  scryptLn?: number;
  /** Overrides on top of the defaults and WANLLMDB_RATE_LIMIT_* . */
  rateLimits?: Partial<RateLimitOptions>;
  /** The JWT signing secret; default WANLLMDB_JWT_SECRET, else one made once and kept in the database. */
  jwtSecret?: string;
}

function scryptLnFrom(opts: AuthPluginOptions): number {
  if (opts.scryptLn !== undefined) return opts.scryptLn;
  const raw = process.env.WANLLMDB_SCRYPT_LN;
  if (raw === undefined || raw === '') return DEFAULT_SCRYPT_LN;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 22) {
    throw Errors.CONFIG_INVALID(`WANLLMDB_SCRYPT_LN=${JSON.stringify(raw)} must be a whole number from 1 to 22 (log2 of scrypt's N; 15 is the default).`, [
      { field: 'WANLLMDB_SCRYPT_LN', message: 'out of range' },
    ]);
  }
  return n;
}

/**
 * Auth: accounts, sessions, API keys, organisations, teams, roles, project
 * grants and the audit log. It provides the kernel's Auth port (TokenAuth),
 * so every call through the RPC host is authenticated and authorised here.
 */
export function createAuthPlugin(opts: AuthPluginOptions = {}) {
  return definePlugin({
    id: 'auth',
    version: '0.1.0',
    register(r) {
      r.migrations(authMigrations);
      const directory = r.resolve(Tokens.Resources);
      const scryptLn = scryptLnFrom(opts);
      const limits = new RateLimits(rateLimitsFrom(process.env, opts.rateLimits));
      let deps: AuthDeps | undefined;
      let dummy: Promise<string> | undefined;
      const ready = (): AuthDeps => {
        if (deps) return deps;
        const db = r.resolve(Tokens.MetadataStore);
        const clock = r.resolve(Tokens.Clock);
        const repo = new AuthRepository(db);
        const sessions = new Sessions(repo, clock);
        const auditLog = new AuditLog(db);
        const tokenAuth = new TokenAuth(repo, sessions, limits, directory, auditLog, clock);
        deps = {
          repo,
          accounts: new Accounts(repo, clock, scryptLn),
          sessions,
          limits,
          tokenAuth,
          auditLog,
          directory,
          clock,
          dummyHash: () => (dummy ??= makeDummyHash(scryptLn)),
        };
        return deps;
      };

      // The port is provided now; what it needs exists once the root services do.
      const port: Auth = {
        authenticate: (caller) => ready().tokenAuth.authenticate(caller),
        authorize: (req) => ready().tokenAuth.authorize(req),
        access: (principal, permission) => ready().tokenAuth.access(principal, permission),
        audit: (record) => ready().tokenAuth.audit(record),
      };
      r.provide(Tokens.Auth, port);

      directory.define('auth', 'org', async (ref) => {
        const { repo } = ready();
        const slug = ref.length <= 100 && SLUG.test(ref);
        const org = isId(ref) ? await repo.org(ref.toLowerCase()) : slug ? await repo.orgBySlug(ref) : undefined;
        return org && { type: 'org', id: org.id, orgId: org.id };
      });
      directory.define('auth', 'team', async (ref) => {
        if (!isId(ref)) return undefined;
        const team = await ready().repo.team(ref.toLowerCase());
        return team && { type: 'team', id: team.id, teamId: team.id, orgId: team.organizationId };
      });

      r.service(auth.v1.AuthService, () => authHandlers(ready()));
      r.service(auth.v1.OrgService, () => orgHandlers(ready()));
      r.service(auth.v1.AdminService, () => adminHandlers(ready()));
      r.service(auth.v1.AuditService, () => auditHandlers(ready()));

      let sweeper: NodeJS.Timeout | undefined;
      r.hooks.start.tapPromise('auth', async () => {
        const d = ready();
        await d.sessions.init(opts.jwtSecret ?? process.env.WANLLMDB_JWT_SECRET);
        // Ended sessions stay a day (a reused refresh token still meets its revoked family), then go.
        sweeper = setInterval(() => {
          d.repo.purgeSessions(d.clock.now() - 24 * 3600 * 1000).catch((err: unknown) => r.logger.warn({ err }, 'purging ended sessions failed'));
        }, 3600 * 1000);
        sweeper.unref();
      });
      r.hooks.stop.tapPromise('auth', () => {
        clearInterval(sweeper);
      });

      const admin: AuthAdmin = {
        async createUser(input) {
          const p = new Problems('The user');
          const { email, password, username, fullName } = p.newUser(input);
          p.throwIfAny();
          return ready().accounts.createUser({ email, password, username, fullName, superuser: !!input.superuser });
        },
        userCount: () => ready().repo.userCount(),
        setAllowRegistration: (allow) => ready().accounts.setAllowRegistration(allow),
        createSetupToken: () => ready().accounts.createSetupToken(),
      };
      r.provide(AuthAdminToken, admin);
    },
  });
}

export const authPlugin = createAuthPlugin();
