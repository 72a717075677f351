import { Errors } from '../../errors.js';

/** The protocol's fixed values (ADR 0019; the go-plugin handshake format). */
export const PROTOCOL = Object.freeze({
  /** Not a secret: it tells a program that a kernel started it, not a user at a shell. */
  cookieEnv: 'WANLLMDB_PLUGIN_MAGIC_COOKIE',
  cookie: 'wanllmdb-plugin-7c1f2f4e',
  coreVersion: 1,
  appVersion: 1,
});

/** The handshake line: `CORE-VERSION|APP-VERSION|NETWORK|ADDRESS|PROTOCOL`, e.g. `1|1|unix|/tmp/wldb-x/hello.sock|grpc`. */
export function parseHandshake(line: string): { address: string } {
  const parts = line.trim().split('|');
  const [core, app, network, address, protocol] = parts;
  const expected = `${PROTOCOL.coreVersion}|${PROTOCOL.appVersion}|unix|<socket path>|grpc`;
  if (parts.length !== 5 || core !== String(PROTOCOL.coreVersion) || app !== String(PROTOCOL.appVersion) || network !== 'unix' || !address?.startsWith('/') || protocol !== 'grpc') {
    throw Errors.PLUGIN_HANDSHAKE(`The plugin program printed ${JSON.stringify(line.slice(0, 200))} as its first line; the protocol wants "${expected}" (ADR 0019). Print only that line on stdout, after the server listens.`);
  }
  return { address: `unix:${address}` };
}
