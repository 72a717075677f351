import { coreServices, definePlugin, isId, setting, type Auth } from '@wanllmdb/core';
import { auth } from '@wanllmdb/proto';
import { Accounts } from './accounts.js';
import { authAdminRef, type AuthAdmin } from './auth-admin.js';
import { adminHandlers } from './admin-service.js';
import { AuditLog } from './audit-log.js';
import { auditHandlers } from './audit-service.js';
import { authHandlers } from './auth-service.js';
import { authMigrations } from './migrations.js';
import { orgHandlers } from './org-service.js';
import { DEFAULT_RATE_LIMITS, RateLimits, rateLimitSettings, type RateLimitOptions } from './rate-limits.js';
import { AuthRepository } from './repository.js';
import { DEFAULT_SCRYPT_LN, makeDummyHash } from './secrets.js';
import { Sessions } from './sessions.js';
import { TokenAuth } from './token-auth.js';
import { AuthProblems, SLUG } from './validate.js';

export interface AuthPluginOptions {
  /** scrypt cost as log2(N); wins over the setting WANLLMDB_SCRYPT_LN (default 15). Tests use a low one. */
  scryptLn?: number;
  /** Overrides on top of the defaults and the WANLLMDB_*RATE_LIMIT_* settings. */
  rateLimits?: Partial<RateLimitOptions>;
  /** The JWT signing secret; wins over the setting WANLLMDB_JWT_SECRET (else one made once and kept in the database). */
  jwtSecret?: string;
}

/**
 * Auth: accounts, sessions, API keys, organisations, teams, roles, project
 * grants and the audit log. It provides the kernel's Auth (TokenAuth), so
 * every call through the RPC host is authenticated and authorised here.
 */
export function createAuthPlugin(opts: AuthPluginOptions = {}) {
  return definePlugin({
    id: 'auth',
    version: '0.1.0',
    deps: { db: coreServices.db, clock: coreServices.clock, resources: coreServices.resources },
    settings: {
      scryptLn: setting.int({
        env: 'WANLLMDB_SCRYPT_LN',
        default: DEFAULT_SCRYPT_LN,
        min: 1,
        max: 22,
        doc: "scrypt cost of password hashes as log2(N)",
        ...(opts.scryptLn !== undefined ? { value: opts.scryptLn } : {}),
      }),
      jwtSecret: setting.string({
        env: 'WANLLMDB_JWT_SECRET',
        secret: true,
        doc: 'the key that signs access tokens; unset, one is made once and kept in the database',
        ...(opts.jwtSecret !== undefined ? { value: opts.jwtSecret } : {}),
      }),
      ...rateLimitSettings(opts.rateLimits),
    },
    init(ctx) {
      const { db, clock, resources: directory } = ctx.deps;
      const { scryptLn, jwtSecret, callsPerMinute, callsPerAddressPerMinute, ingestPerMinute, ingestPerAddressPerMinute } = ctx.settings;
      ctx.migrations(authMigrations);
      const limits = new RateLimits({ ...DEFAULT_RATE_LIMITS, ...opts.rateLimits, callsPerMinute, callsPerAddressPerMinute, ingestPerMinute, ingestPerAddressPerMinute });
      const repo = new AuthRepository(db);
      const sessions = new Sessions(repo, clock);
      const auditLog = new AuditLog(db);
      const tokenAuth = new TokenAuth(repo, sessions, limits, directory, auditLog, clock);
      let dummy: Promise<string> | undefined;
      const deps = {
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
      ctx.provideAuth(tokenAuth);

      directory.define('auth', 'org', async (ref) => {
        const slug = ref.length <= 100 && SLUG.test(ref);
        const org = isId(ref) ? await repo.org(ref.toLowerCase()) : slug ? await repo.orgBySlug(ref) : undefined;
        return org && { type: 'org', id: org.id, orgId: org.id };
      });
      directory.define('auth', 'team', async (ref) => {
        if (!isId(ref)) return undefined;
        const team = await repo.team(ref.toLowerCase());
        return team && { type: 'team', id: team.id, teamId: team.id, orgId: team.organizationId };
      });

      ctx.service(auth.v1.AuthService, authHandlers(deps));
      ctx.service(auth.v1.OrgService, orgHandlers(deps));
      ctx.service(auth.v1.AdminService, adminHandlers(deps));
      ctx.service(auth.v1.AuditService, auditHandlers(deps));

      let sweeper: NodeJS.Timeout | undefined;
      ctx.onStart(async () => {
        await sessions.init(jwtSecret);
        // Ended sessions stay a day (a reused refresh token still meets its revoked family), then go.
        sweeper = setInterval(() => {
          repo.purgeSessions(clock.now() - 24 * 3600 * 1000).catch((err: unknown) => ctx.logger.warn({ err }, 'purging ended sessions failed'));
        }, 3600 * 1000);
        sweeper.unref();
      });
      ctx.onStop(() => {
        clearInterval(sweeper);
      });

      const admin: AuthAdmin = {
        async createUser(input) {
          const p = new AuthProblems('The user');
          const { email, password, username, fullName } = p.newUser(input);
          p.throwIfAny();
          return deps.accounts.createUser({ email, password, username, fullName, superuser: !!input.superuser });
        },
        userCount: () => repo.userCount(),
        setAllowRegistration: (allow) => deps.accounts.setAllowRegistration(allow),
        createSetupToken: () => deps.accounts.createSetupToken(),
      };
      ctx.provide(authAdminRef, admin);
    },
  });
}

export const authPlugin = createAuthPlugin();
