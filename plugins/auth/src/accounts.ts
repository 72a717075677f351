import { randomBytes } from 'node:crypto';
import { Errors, newId, slugify, type Clock, type SqlExecutor } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';
import { toApiKey, toUser, type AuthRepository } from './repository.js';
import { API_KEY_SHOWN, hashPassword, newApiKey, sha256 } from './secrets.js';
import { USERNAME } from './validate.js';

export interface NewAccount {
  /** Lower-case, validated. */
  email: string;
  password: string;
  /** Validated, or '' to derive one from the email. */
  username: string;
  fullName: string;
  superuser: boolean;
}

const ALLOW_REGISTRATION = 'allow_registration';
const SETUP_TOKEN = 'setup_token';
const SETUP_TTL_MS = 24 * 3600 * 1000;

/** Making users (each with a personal organisation), service accounts and API keys. */
export class Accounts {
  constructor(
    readonly repo: AuthRepository,
    private readonly clock: Clock,
    readonly scryptLn: number,
  ) {}

  /** A free username from a wish ("ada.l" from "ada.l@x.org"), suffixed when taken. */
  private async freeUsername(tx: SqlExecutor, wish: string): Promise<string> {
    let base = wish.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+|[._-]+$/g, '').slice(0, 40).replace(/[._-]+$/g, '');
    if (!base || !USERNAME.test(base)) base = 'user';
    if (!(await this.repo.usernameTaken(base, tx))) return base;
    for (let i = 2; i < 20; i++) if (!(await this.repo.usernameTaken(`${base}-${i}`, tx))) return `${base}-${i}`;
    return `${base}-${randomBytes(4).toString('hex')}`;
  }

  private async freeOrgSlug(tx: SqlExecutor, wish: string): Promise<string> {
    const base = slugify(wish, 60) || 'org';
    if (!(await this.repo.orgSlugTaken(base, tx))) return base;
    for (let i = 2; i < 20; i++) if (!(await this.repo.orgSlugTaken(`${base}-${i}`, tx))) return `${base}-${i}`;
    return `${base}-${randomBytes(4).toString('hex')}`;
  }

  /** Creates a user and their personal organisation (as its owner). ALREADY_EXISTS for a taken email or username. */
  async createUser(a: NewAccount): Promise<auth.v1.User> {
    const taken = async () => {
      if (await this.repo.emailTaken(a.email)) return Errors.ALREADY_EXISTS('An account with this email already exists. Sign in, or use another email.', [{ field: 'email', message: 'taken' }]);
      if (a.username && (await this.repo.usernameTaken(a.username))) return Errors.ALREADY_EXISTS('This username is taken. Choose another.', [{ field: 'username', message: 'taken' }]);
      return undefined;
    };
    const before = await taken();
    if (before) throw before;
    const passwordHash = await hashPassword(a.password, this.scryptLn);
    const now = this.clock.now();
    const id = newId();
    try {
      await this.repo.db.transaction(async (tx) => {
        const username = a.username || (await this.freeUsername(tx, a.email.split('@')[0]!));
        const orgId = newId();
        await this.repo.insertOrg(tx, { id: orgId, name: username, slug: await this.freeOrgSlug(tx, username), description: '', personal: true, now });
        await this.repo.insertUser(tx, { id, username, email: a.email, passwordHash, fullName: a.fullName, kind: 'user', superuser: a.superuser, defaultOrgId: orgId, now });
        await this.repo.addMember(tx, orgId, id, 'owner', now);
      });
    } catch (e) {
      // A racing registration won the unique index.
      throw (await taken()) ?? e;
    }
    return toUser((await this.repo.user(id))!);
  }

  /** A service account: a member of `orgId` with `role`, no password, one API key (returned once). */
  async createServiceAccount(orgId: string, name: string, role: string, scopes: string[]): Promise<auth.v1.ServiceAccountCreated> {
    const now = this.clock.now();
    const id = newId();
    const apiKey = await this.repo.db.transaction(async (tx) => {
      const username = await this.freeUsername(tx, `sa-${slugify(name, 40) || 'service'}`);
      await this.repo.insertUser(tx, { id, username, email: null, passwordHash: null, fullName: name, kind: 'service', superuser: false, defaultOrgId: orgId, now });
      await this.repo.addMember(tx, orgId, id, role, now);
      return this.insertApiKey(tx, id, name, scopes, null, now);
    });
    return { account: toUser((await this.repo.user(id))!), apiKey };
  }

  async createApiKey(userId: string, name: string, scopes: string[], expiresAt: number | null): Promise<auth.v1.ApiKeyCreated> {
    return this.insertApiKey(this.repo.db, userId, name, scopes, expiresAt, this.clock.now());
  }

  /** A new key, stored as its sha256; the key itself is returned this once. */
  private async insertApiKey(tx: SqlExecutor, userId: string, name: string, scopes: string[], expiresAt: number | null, now: number): Promise<auth.v1.ApiKeyCreated> {
    const key = newApiKey();
    const id = newId();
    await this.repo.insertApiKey(tx, { id, userId, name, prefix: key.slice(0, API_KEY_SHOWN), hash: sha256(key), scopes, expiresAt, now });
    return { apiKey: toApiKey((await this.repo.apiKey(id, tx))!), key };
  }

  /** A one-time token for creating the first administrator; stored as sha256 with its expiry. */
  async createSetupToken(): Promise<string> {
    if ((await this.repo.userCount()) > 0) throw Errors.PERMISSION_DENIED('An account exists already; a setup token is only for the first administrator.');
    const token = randomBytes(32).toString('base64url');
    await this.repo.putSetting(SETUP_TOKEN, `${sha256(token)}:${this.clock.now() + SETUP_TTL_MS}`);
    return token;
  }

  /** Spends a setup token: true when it was the live one and no user exists yet. */
  async spendSetupToken(token: string): Promise<boolean> {
    const stored = await this.repo.setting(SETUP_TOKEN);
    if (!stored || token.length > 200) return false;
    const [hash, until] = stored.split(':');
    if (hash !== sha256(token) || Number(until) <= this.clock.now()) return false;
    if (!(await this.repo.deleteSetting(SETUP_TOKEN, stored))) return false; // another request spent it first
    return (await this.repo.userCount()) === 0;
  }

  async allowRegistration(): Promise<boolean> {
    return (await this.repo.setting(ALLOW_REGISTRATION)) !== 'false';
  }

  async setAllowRegistration(allow: boolean): Promise<void> {
    await this.repo.putSetting(ALLOW_REGISTRATION, allow ? 'true' : 'false');
  }
}
