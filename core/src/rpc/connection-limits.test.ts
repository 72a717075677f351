import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Errors } from '../errors.js';
import { connectionCap, openFileLimit, RESERVED_FDS } from './connection-limits.js';

describe('connection cap', () => {
  it('reads the open-file limit this process runs with', () => {
    // A child shell inherits this process's limit, so both must agree.
    const shell = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    expect(openFileLimit()).toBe(shell === 'unlimited' ? Infinity : Number(shell));
  });

  it('auto leaves the reserved descriptors and one more per connection', () => {
    expect(connectionCap('auto', 20_000)).toBe((20_000 - RESERVED_FDS) / 2);
    expect(connectionCap('auto', 1024)).toBe(256);
    expect(connectionCap('auto', 100)).toBe(16); // a tiny limit still serves someone (the start-up log says to raise it)
    expect(connectionCap('auto', undefined)).toBe(10_000);
    expect(connectionCap('auto', Infinity)).toBe(100_000);
  });

  it('takes an explicit cap up to what the open-file limit leaves, and refuses more with what to do', () => {
    expect(connectionCap(5000, 20_000)).toBe(5000);
    expect(connectionCap(20_000 - RESERVED_FDS, 20_000)).toBe(20_000 - RESERVED_FDS);
    expect(connectionCap(1_000_000, undefined)).toBe(1_000_000);
    try {
      connectionCap(20_000, 20_000);
      expect.unreachable();
    } catch (e) {
      expect(Errors.CONFIG_INVALID.is(e)).toBe(true);
      expect((e as Error).message).toMatch(/open-file limit \(ulimit -n\) is 20000.*Raise the limit .* or lower the setting/);
    }
  });
});
