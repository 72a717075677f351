import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder that holds `wanllmdb/…` and `google/api/…` (the include root of every import). */
export const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Every wanLLMDB .proto file, relative to PROTO_DIR, in a stable order. */
export function protoFiles(dir = PROTO_DIR): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.proto')) out.push(relative(dir, p));
    }
  };
  walk(join(dir, 'wanllmdb'));
  return out;
}
