import { Errors, pageMeta, type CallContext } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';
import type { AuthDeps } from './deps.js';
import { toUser } from './repository.js';
import { MAX_NAME, AuthProblems } from './validate.js';

type Handlers = auth.v1.AdminServiceHandlers<CallContext>;

/** Site administration (`site:admin`: superusers only, checked by TokenAuth). */
export function adminHandlers(d: AuthDeps): Handlers {
  const { repo, accounts, sessions, clock } = d;

  return {
    async createUser(req) {
      const p = new AuthProblems('The user');
      const { email, password, username, fullName } = p.newUser(req);
      p.throwIfAny();
      return { data: await accounts.createUser({ email, password, username, fullName, superuser: !!req.isSuperuser }) };
    },

    async listUsers(req) {
      const p = new AuthProblems('The list request');
      const { page, pageSize, offset } = p.page(req.page, req.pageSize);
      const search = p.line('search', req.search, MAX_NAME);
      p.throwIfAny();
      const { items, total } = await repo.listUsers({ offset, limit: pageSize, search });
      return { data: items, meta: pageMeta(total, page, pageSize) };
    },

    async updateUser(req) {
      const p = new AuthProblems('The user change');
      const id = p.id('userId', req.userId);
      p.throwIfAny();
      const flags = { ...(req.isActive !== undefined ? { isActive: !!req.isActive } : {}), ...(req.isSuperuser !== undefined ? { isSuperuser: !!req.isSuperuser } : {}) };
      await repo.db.transaction(async (tx) => {
        const u = await repo.user(id, tx);
        if (!u) throw Errors.NOT_FOUND('There is no user with this id.', [{ field: 'userId', message: 'no such user' }]);
        const wasAdmin = Number(u.is_superuser) === 1 && Number(u.is_active) === 1;
        const staysAdmin = (flags.isSuperuser ?? Number(u.is_superuser) === 1) && (flags.isActive ?? Number(u.is_active) === 1);
        if (wasAdmin && !staysAdmin && (await repo.activeSuperuserCount(tx)) <= 1) {
          throw Errors.VALIDATION('This is the last active site administrator. Make another user an administrator first.', [{ field: 'userId', message: 'last superuser' }]);
        }
        await repo.updateUserFlags(tx, id, flags, clock.now());
      });
      if (flags.isActive === false) await sessions.revokeAll(id);
      return { data: toUser((await repo.user(id))!) };
    },

    async getSettings() {
      return { data: { allowRegistration: await accounts.allowRegistration() } };
    },

    async updateSettings(req) {
      if (req.allowRegistration !== undefined) await accounts.setAllowRegistration(!!req.allowRegistration);
      return { data: { allowRegistration: await accounts.allowRegistration() } };
    },
  };
}
