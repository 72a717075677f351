import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashing and the opaque secrets (refresh tokens, API keys).
 *
 * Passwords: scrypt (memory-hard) in a PHC-like string
 * `$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`. The cost is read back from
 * the stored string, so raising the default later does not break old hashes.
 */
export const DEFAULT_SCRYPT_LN = 15;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** Bounds for a cost read from a stored hash (a corrupt row must not eat the server's memory). */
const MAX_LN = 22;
const MAX_R = 32;
const MAX_P = 16;

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password.normalize('NFKC'), salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

const costOptions = (ln: number, r: number, p: number): ScryptOptions => ({ N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r + 1024 * 1024 });

export async function hashPassword(password: string, ln = DEFAULT_SCRYPT_LN): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const hash = await scryptAsync(password, salt, KEY_LENGTH, costOptions(ln, 8, 1));
  return `$scrypt$ln=${ln},r=8,p=1$${salt.toString('base64')}$${hash.toString('base64')}`;
}

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** True when `password` matches `stored`; false for a wrong password or a hash it cannot read. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = PHC.exec(stored);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 1 || ln > MAX_LN || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return false;
  const salt = Buffer.from(m[4]!, 'base64');
  const expected = Buffer.from(m[5]!, 'base64');
  if (expected.length < 16) return false;
  const actual = await scryptAsync(password, salt, expected.length, costOptions(ln, r, p));
  return timingSafeEqual(actual, expected);
}

/** A hash with no password behind it, to spend the same time when an email is unknown. */
export function makeDummyHash(ln: number): Promise<string> {
  return hashPassword(randomBytes(18).toString('base64url'), ln);
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** An opaque refresh token: 32 random bytes, base64url. */
export const newRefreshToken = (): string => randomBytes(32).toString('base64url');

export const API_KEY_PREFIX = 'wldb_';
export const API_KEY_SHOWN = 10;

/** `wldb_<43 chars base64url>`; stored only as sha256 (it has 256 bits of entropy, so a fast hash is right). */
export const newApiKey = (): string => API_KEY_PREFIX + randomBytes(32).toString('base64url');

export const isApiKeyShape = (s: string): boolean => /^wldb_[A-Za-z0-9_-]{43}$/.test(s);
