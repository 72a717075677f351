import { Errors, permissionMatches, type CallContext, type Principal } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';
import type { AuthDeps } from './deps.js';
import { toApiKey, toUser } from './repository.js';
import { checkScope } from './roles.js';
import { hashPassword, verifyPassword } from './secrets.js';
import { AuthProblems, MAX_NAME } from './validate.js';

type Handlers = auth.v1.AuthServiceHandlers<CallContext>;

const WRONG = 'Email or password is wrong.';
const MAX_SCOPES = 50;


/** How a signed-in caller proved who they are (getMe never runs anonymously: `self:read` needs a caller). */
function signedInBy(p: Principal): auth.v1.Me['authMethod'] {
  if (p.method === 'none') throw Errors.UNAUTHENTICATED('Sign in first: this call tells who is signed in.');
  return p.method;
}

/** The caller's address ('' in process, or from a host that does not pass it yet). */
export const addressOf = (ctx: CallContext): string => (typeof ctx.address === 'string' ? ctx.address : '');

/** Validates a list of API-key scopes: default ["*:*"], deduplicated; a key may not grant more than the key that mints it. */
export function checkScopes(p: AuthProblems, field: string, value: unknown, caller?: readonly string[]): string[] {
  const list = value === undefined || value === null || (Array.isArray(value) && value.length === 0) ? ['*:*'] : value;
  if (!Array.isArray(list)) return (p.add(field, 'must be a list of scopes such as ["runs:write"]'), []);
  if (list.length > MAX_SCOPES) p.add(field, `has more than ${MAX_SCOPES} scopes`);
  const out: string[] = [];
  list.slice(0, MAX_SCOPES).forEach((s, i) => {
    const problem = checkScope(s);
    if (problem) return p.add(`${field}[${i}]`, problem);
    if (caller && !caller.some((c) => permissionMatches(c, s as string))) return p.add(`${field}[${i}]`, 'is wider than the scopes of the API key making this call');
    if (!out.includes(s as string)) out.push(s as string);
  });
  return out;
}

export function authHandlers(d: AuthDeps): Handlers {
  const { repo, accounts, sessions, limits, clock } = d;

  const me = async (ctx: CallContext) => {
    const u = ctx.principal.id ? await repo.user(ctx.principal.id) : undefined;
    if (!u) throw Errors.UNAUTHENTICATED('This call needs a signed-in account.');
    return u;
  };

  return {
    async register(req, ctx) {
      await limits.registration(addressOf(ctx));
      // The first administrator registers with the one-time setup token the server printed
      // (RegisterRequest.setup_token once the contract has it).
      const setupToken = (req as { setupToken?: unknown }).setupToken;
      const setup = typeof setupToken === 'string' && setupToken !== '';
      if (!setup && !(await accounts.allowRegistration())) throw Errors.PERMISSION_DENIED('Self-registration is switched off; ask an administrator to create your account.');
      const p = new AuthProblems('The registration');
      const { email, password, username, fullName } = p.newUser(req);
      p.throwIfAny();
      if (setup && !(await accounts.spendSetupToken(setupToken))) {
        throw Errors.PERMISSION_DENIED('The setup token is wrong, expired or already used. Restart the server to print a new one, or ask an administrator.');
      }
      const user = await accounts.createUser({ email, password, username, fullName, superuser: setup });
      return { data: user };
    },

    async login(req, ctx) {
      const address = addressOf(ctx);
      const p = new AuthProblems('The sign-in request');
      const email = p.email('email', req.email);
      const password = p.givenPassword('password', req.password);
      p.throwIfAny();
      await limits.loginAllowed(email, address);
      const user = await repo.userByEmail(email);
      let ok = false;
      if (user?.password_hash && user.kind === 'user') ok = await verifyPassword(password, user.password_hash);
      else await verifyPassword(password, await d.dummyHash()); // the same time whether or not the email exists
      if (!ok || !user) {
        await limits.loginFailed(email, address);
        throw Errors.UNAUTHENTICATED(WRONG);
      }
      if (!Number(user.is_active)) throw Errors.UNAUTHENTICATED('This account is disabled. Ask an administrator.');
      await limits.loginSucceeded(email);
      return { data: await sessions.open(user.id, { address, userAgent: ctx.header('user-agent') ?? '' }) };
    },

    async refresh(req) {
      const token = typeof req.refreshToken === 'string' ? req.refreshToken.trim() : '';
      if (!token) throw Errors.VALIDATION('The refresh request is invalid: refreshToken is required.', [{ field: 'refreshToken', message: 'is required' }]);
      const pair = await sessions.refresh(token, async (userId) => {
        const u = await repo.user(userId);
        return !!u && Number(u.is_active) === 1;
      });
      return { data: pair };
    },

    async logout(req, ctx) {
      const p = ctx.principal;
      if (req.everywhere) await sessions.revokeAll(p.id);
      else if (p.method === 'password' && p.credentialId) await sessions.revoke(p.credentialId);
      return {};
    },

    async getMe(_req, ctx) {
      const u = await me(ctx);
      return {
        data: { user: toUser(u), memberships: await repo.membershipsOf(u.id), authMethod: signedInBy(ctx.principal), scopes: [...(ctx.principal.scopes ?? [])] },
      };
    },

    async changePassword(req, ctx) {
      const u = await me(ctx);
      const p = new AuthProblems('The password change');
      const current = p.givenPassword('currentPassword', req.currentPassword);
      const next = p.password('newPassword', req.newPassword);
      p.throwIfAny();
      if (u.kind !== 'user' || !u.password_hash) throw Errors.PERMISSION_DENIED('Service accounts have no password; they sign in with API keys.');
      const account = `pw:${u.id}`;
      await limits.loginAllowed(account, addressOf(ctx));
      if (!(await verifyPassword(current, u.password_hash))) {
        await limits.loginFailed(account, addressOf(ctx));
        throw Errors.VALIDATION('The current password is wrong.', [{ field: 'currentPassword', message: 'is wrong' }]);
      }
      await repo.setPassword(u.id, await hashPassword(next, accounts.scryptLn), clock.now());
      // Every other session ends: whoever knew the old password is signed out.
      await sessions.revokeAll(u.id, ctx.principal.method === 'password' ? (ctx.principal.credentialId ?? '') : '');
      return {};
    },

    async createApiKey(req, ctx) {
      const u = await me(ctx);
      const p = new AuthProblems('The API key');
      const name = p.line('name', req.name, MAX_NAME, { required: true });
      const scopes = checkScopes(p, 'scopes', req.scopes, ctx.principal.scopes);
      const expiresAt = p.instant('expiresAt', req.expiresAt);
      if (expiresAt !== undefined && expiresAt <= clock.now()) p.add('expiresAt', 'is in the past');
      p.throwIfAny();
      return { data: await accounts.createApiKey(u.id, name, scopes, expiresAt ?? null) };
    },

    async listApiKeys(_req, ctx) {
      const u = await me(ctx);
      return { data: (await repo.apiKeysOf(u.id)).map(toApiKey) };
    },

    async revokeApiKey(req, ctx) {
      const u = await me(ctx);
      const p = new AuthProblems('The request');
      const id = p.id('id', req.id);
      p.throwIfAny();
      if (!(await repo.revokeApiKey(u.id, id, clock.now()))) {
        throw Errors.NOT_FOUND('You have no live API key with this id. List yours with GET /api/v1/auth/api-keys.', [{ field: 'id', message: 'no such key' }]);
      }
      return {};
    },
  };
}
