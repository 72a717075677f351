import { randomBytes } from 'node:crypto';
import { Errors, newId, type Clock } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { AuthRepository } from './repository.js';
import { newRefreshToken, sha256 } from './secrets.js';

export const ACCESS_TTL_SECONDS = 30 * 60;
export const REFRESH_TTL_MS = 7 * 24 * 3600 * 1000;
const ISSUER = 'wanllmdb';
const JWT_SECRET_SETTING = 'jwt_secret';

export interface AccessClaims {
  userId: string;
  sessionId: string;
}

const signInAgain = 'Sign in again with POST /api/v1/auth/login.';

/**
 * Sessions: a JWT access token (HS256, 30 minutes) names its session (`sid`);
 * an opaque refresh token (7 days, stored as sha256) rotates on every use,
 * and a second use of a spent one revokes the whole session.
 */
export class Sessions {
  private key?: Uint8Array;

  constructor(
    private readonly repo: AuthRepository,
    private readonly clock: Clock,
  ) {}

  /** Loads the signing secret: WANLLMDB_JWT_SECRET, or 32 random bytes made once and kept in the database. */
  async init(envSecret: string | undefined): Promise<void> {
    if (envSecret) {
      if (Buffer.byteLength(envSecret) < 32) {
        throw Errors.CONFIG_INVALID('WANLLMDB_JWT_SECRET is shorter than 32 bytes. Use a long random value (e.g. `openssl rand -base64 48`) or unset it to let the server make one.', [
          { field: 'WANLLMDB_JWT_SECRET', message: 'too short' },
        ]);
      }
      this.key = new TextEncoder().encode(envSecret);
      return;
    }
    const stored = await this.repo.settingOnce(JWT_SECRET_SETTING, randomBytes(32).toString('base64'));
    this.key = Buffer.from(stored, 'base64');
  }

  private get secret(): Uint8Array {
    if (!this.key) throw Errors.KERNEL_STATE('The auth plugin has not started: its signing key is not loaded yet.');
    return this.key;
  }

  /** Opens a session and returns its first token pair. */
  async open(userId: string, origin: { address: string; userAgent: string }): Promise<auth.v1.TokenPair> {
    const now = this.clock.now();
    const sessionId = newId();
    const refresh = newRefreshToken();
    await this.repo.db.transaction(async (tx) => {
      await this.repo.insertSession(tx, { id: sessionId, userId, now, expiresAt: now + REFRESH_TTL_MS, address: origin.address, userAgent: origin.userAgent.slice(0, 512) });
      await this.repo.insertRefresh(tx, { id: newId(), sessionId, hash: sha256(refresh), now, expiresAt: now + REFRESH_TTL_MS });
    });
    return { accessToken: await this.sign(userId, sessionId, now), refreshToken: refresh, expiresIn: ACCESS_TTL_SECONDS, tokenType: 'Bearer' };
  }

  /** Exchanges a refresh token for a new pair; a reused one revokes its session. */
  async refresh(token: string, userActive: (userId: string) => Promise<boolean>): Promise<auth.v1.TokenPair> {
    const invalid = () => Errors.UNAUTHENTICATED(`The refresh token is not valid. ${signInAgain}`);
    if (!token || token.length > 256) throw invalid();
    const row = await this.repo.refreshByHash(sha256(token));
    if (!row) throw invalid();
    const now = this.clock.now();
    const session = await this.repo.session(row.session_id);
    if (!session) throw invalid();
    const reused = () => Errors.UNAUTHENTICATED(`This refresh token was already used, so the session was ended in case it was stolen. ${signInAgain}`);
    if (row.used_at !== null) {
      await this.revoke(session.id);
      throw reused();
    }
    if (session.revoked_at !== null) throw Errors.UNAUTHENTICATED(`The session was signed out. ${signInAgain}`);
    if (Number(row.expires_at) <= now || Number(session.expires_at) <= now) throw Errors.UNAUTHENTICATED(`The refresh token expired. ${signInAgain}`);
    if (!(await userActive(session.user_id))) throw Errors.UNAUTHENTICATED('This account is disabled. Ask an administrator.');
    const next = newRefreshToken();
    const won = await this.repo.db.transaction(async (tx) => {
      if (!(await this.repo.useRefresh(tx, row.id, now))) return false;
      await this.repo.insertRefresh(tx, { id: newId(), sessionId: session.id, hash: sha256(next), now, expiresAt: now + REFRESH_TTL_MS });
      await this.repo.extendSession(tx, session.id, now + REFRESH_TTL_MS);
      return true;
    });
    if (!won) {
      // Two refreshes raced with one token: treat it as reuse.
      await this.revoke(session.id);
      throw reused();
    }
    return { accessToken: await this.sign(session.user_id, session.id, now), refreshToken: next, expiresIn: ACCESS_TTL_SECONDS, tokenType: 'Bearer' };
  }

  async revoke(sessionId: string): Promise<void> {
    await this.repo.revokeSession(sessionId, this.clock.now());
  }

  async revokeAll(userId: string, keep = ''): Promise<void> {
    await this.repo.revokeSessionsOf(userId, this.clock.now(), keep);
  }

  private async sign(userId: string, sessionId: string, nowMs: number): Promise<string> {
    const iat = Math.floor(nowMs / 1000);
    return new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(ISSUER)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ACCESS_TTL_SECONDS)
      .setJti(newId())
      .sign(this.secret);
  }

  /** Checks an access token's signature, expiry and session; never echoes the token. */
  async verify(token: string): Promise<AccessClaims> {
    let payload: { sub?: unknown; sid?: unknown };
    try {
      ({ payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, algorithms: ['HS256'], currentDate: new Date(this.clock.now()) }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw Errors.UNAUTHENTICATED('The access token expired; refresh it with POST /api/v1/auth/refresh (or sign in again).');
      throw Errors.UNAUTHENTICATED(`The access token is not valid. ${signInAgain}`);
    }
    if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') throw Errors.UNAUTHENTICATED(`The access token is not valid. ${signInAgain}`);
    if (!(await this.sessionLive(payload.sid, payload.sub))) throw Errors.UNAUTHENTICATED(`The session was signed out. ${signInAgain}`);
    return { userId: payload.sub, sessionId: payload.sid };
  }

  /**
   * Read on every call, not cached: a sign-out in one server process (or
   * replica) must end the session in all of them at once, and the lookup is
   * one primary-key read.
   */
  private async sessionLive(sessionId: string, userId: string): Promise<boolean> {
    const s = await this.repo.session(sessionId);
    return !!s && s.user_id === userId && s.revoked_at === null && Number(s.expires_at) > this.clock.now();
  }
}
