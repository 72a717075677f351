import type { Clock, ResourceDirectory } from '@wanllmdb/core';
import type { Accounts } from './accounts.js';
import type { AuditLog } from './audit-log.js';
import type { RateLimits } from './rate-limits.js';
import type { AuthRepository } from './repository.js';
import type { Sessions } from './sessions.js';
import type { TokenAuth } from './token-auth.js';

/** What the handlers share, made once in init(). */
export interface AuthDeps {
  repo: AuthRepository;
  accounts: Accounts;
  sessions: Sessions;
  limits: RateLimits;
  tokenAuth: TokenAuth;
  auditLog: AuditLog;
  directory: ResourceDirectory;
  clock: Clock;
  /** A password hash nobody knows, to spend a verify's time for an unknown email. */
  dummyHash(): Promise<string>;
}
