import type { Mode } from '../protocol.js';
import { sdkError } from '../errors.js';
import type { MethodCalls } from '../transport/transport.js';
import { ArtifactClient, type ArtifactClientOptions } from './artifact-client.js';

export interface StoreOptions {
  mode: Mode;
  dataDir?: string;
  address?: string;
  apiKey?: string;
}

/** An artifact client on its own connection to the store (the run's worker keeps its own for metrics, so a large upload never holds them up). */
export async function openArtifactClient(store: StoreOptions, opts: ArtifactClientOptions = {}): Promise<{ client: ArtifactClient; close(): Promise<void> }> {
  let calls: MethodCalls & { close(): Promise<void> };
  if (store.mode === 'offline') {
    throw await sdkError('VALIDATION', 'Artifacts need a store to talk to: use mode "embedded" or "remote" (an offline run syncs its metrics later; artifacts are stored at once).', [
      { field: 'mode', message: 'offline' },
    ]);
  } else if (store.mode === 'embedded') {
    const { EmbeddedTransport } = await import('../transport/embedded.js');
    calls = await EmbeddedTransport.open({ dataDir: store.dataDir });
  } else {
    const { RemoteTransport } = await import('../transport/remote.js');
    calls = await RemoteTransport.open({ address: store.address!, apiKey: store.apiKey });
  }
  return { client: new ArtifactClient(calls, opts), close: () => calls.close() };
}
