import type { Mode } from '../protocol.js';
import { sdkError } from '../errors.js';
import type { MethodCalls } from '../transport/transport.js';
import { ArtifactClient, type ArtifactClientOptions } from './artifact-client.js';

export interface StoreOptions {
  /** Default: remote when `url` or `address` is given, else embedded. */
  mode?: Mode;
  /** embedded: the data folder. */
  dataDir?: string;
  /** remote: grpc://host:port (or host:port). */
  url?: string;
  /** remote: host:port, as resolved. */
  address?: string;
  apiKey?: string;
}

/** An artifact client on its own connection to the store (the run's worker keeps its own for metrics, so a large upload never holds them up). */
export async function openArtifactClient(store: StoreOptions, opts: ArtifactClientOptions = {}): Promise<{ client: ArtifactClient; close(): Promise<void> }> {
  let calls: MethodCalls & { close(): Promise<void> };
  const mode = store.mode ?? (store.url || store.address ? 'remote' : 'embedded');
  if (mode === 'offline') {
    throw await sdkError('VALIDATION', 'Artifacts need a store to talk to: use mode "embedded" or "remote" (an offline run syncs its metrics later; artifacts are stored at once).', [
      { field: 'mode', message: 'offline' },
    ]);
  } else if (mode === 'embedded') {
    const { EmbeddedTransport } = await import('../transport/embedded.js');
    calls = await EmbeddedTransport.open({ dataDir: store.dataDir });
  } else {
    const { RemoteTransport } = await import('../transport/remote.js');
    const { parseUrl } = await import('../options.js');
    const address = store.address ?? (store.url ? await parseUrl(store.url, '--url') : undefined);
    if (!address) throw await sdkError('CONFIG_INVALID', 'Remote artifacts need a server: give its url (grpc://host:port).', [{ field: 'url', message: 'required' }]);
    calls = await RemoteTransport.open({ address, apiKey: store.apiKey });
  }
  return { client: new ArtifactClient(calls, opts), close: () => calls.close() };
}
