import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { Errors } from '../../errors.js';
import { Problems } from '../../validation/problems.js';
import { setting, type SettingSpec, type SettingsSpec } from '../settings.js';

/** The file that makes a folder an out-of-process plugin. */
export const MANIFEST_FILE = 'wanllmdb-plugin.json';

/**
 * An out-of-process plugin as its `wanllmdb-plugin.json` describes it
 * (ADR 0019): the program to run, the folder of its .proto files, the
 * permissions its calls back into the kernel may use, and its settings.
 */
export interface PluginManifest {
  id: string;
  version: string;
  description: string;
  /** The folder of the manifest: the program's working directory. */
  dir: string;
  /** argv: the program (looked up on PATH, or relative to `dir`) and its arguments. */
  command: readonly string[];
  /** Absolute folder holding `wanllmdb/<area>/v1/*.proto`. */
  proto: string;
  /** Permission patterns (`projects:read`, `runs:*`) its own calls back into the kernel may use; [] = none. */
  permissions: readonly string[];
  settings: SettingsSpec;
  /** How long the program has to print its handshake and answer health checks as serving. */
  startTimeoutMs: number;
  /** How often the kernel checks the running program's health; three misses in a row and it is killed and restarted. */
  healthIntervalMs: number;
}

const ID = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
const PERMISSION = /^(\*|[a-z][a-z0-9-]*):(\*|[a-z][a-z0-9-]*)$/;
const ENV = /^WANLLMDB_[A-Z0-9_]+$/;
const SETTING_NAME = /^[a-z][A-Za-z0-9]*$/;

/** Whether `path` is (or is the folder of) an out-of-process plugin. */
export function isManifestPath(path: string): boolean {
  if (path.endsWith(MANIFEST_FILE)) return existsSync(path);
  return existsSync(join(path, MANIFEST_FILE)) && statSync(path).isDirectory();
}

/** Reads and checks a manifest; every problem is reported at once, naming the file and the field. */
export function readManifest(path: string): PluginManifest {
  const file = resolve(path.endsWith(MANIFEST_FILE) ? path : join(path, MANIFEST_FILE));
  const dir = resolve(file, '..');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw Errors.PLUGIN_INVALID(`Cannot read the plugin manifest ${file}: ${e instanceof Error ? e.message : String(e)}. It must be a JSON object (docs/plugins.md, "Out-of-process plugins").`);
  }
  const m = (raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  const p = new Problems(`The plugin manifest ${file}`);
  const id = p.match('id', m.id, ID, 'must be kebab-case, e.g. "trainer-lora"', { required: true, max: 64 });
  const version = p.match('version', m.version, SEMVER, 'must be semver, e.g. "1.2.0"', { required: true });
  const description = p.text('description', m.description, 500);
  const command = Array.isArray(m.command) ? m.command : [];
  if (!command.length) p.add('command', 'must be a non-empty list: the program and its arguments, e.g. ["python3", "-u", "plugin.py"]');
  command.forEach((c, i) => {
    if (typeof c !== 'string' || !c || c.includes('\0')) p.add(`command[${i}]`, 'must be a non-empty string');
  });
  const protoRel = m.proto === undefined ? 'proto' : m.proto;
  let proto = '';
  if (typeof protoRel !== 'string' || isAbsolute(protoRel) || relative(dir, resolve(dir, protoRel)).startsWith('..')) {
    p.add('proto', 'must be a folder inside the plugin folder, e.g. "proto"');
  } else {
    proto = resolve(dir, protoRel);
    if (!existsSync(join(proto, 'wanllmdb'))) p.add('proto', `names ${proto}, which holds no wanllmdb/<area>/v1/*.proto`);
  }
  const permissions = m.permissions === undefined ? [] : Array.isArray(m.permissions) ? m.permissions : (p.add('permissions', 'must be a list such as ["projects:read"]'), []);
  permissions.forEach((s, i) => {
    if (typeof s !== 'string' || !PERMISSION.test(s)) p.add(`permissions[${i}]`, 'must be a permission pattern such as "projects:read" or "runs:*"');
    // Site administration is never granted by a wildcard: a program that needs it names it.
    else if (s === '*:*' || s === 'site:*') p.add(`permissions[${i}]`, 'grants site administration by a wildcard; name "site:admin" if the program needs it, or narrower permissions');
  });
  const settings = settingsOf(p, m.settings, id);
  const startTimeoutMs = wholeNumber(p, 'startTimeoutMs', m.startTimeoutMs, 30_000, 1_000, 600_000);
  const healthIntervalMs = wholeNumber(p, 'healthIntervalMs', m.healthIntervalMs, 5_000, 100, 600_000);
  for (const k of Object.keys(m)) {
    if (!['id', 'version', 'description', 'command', 'proto', 'permissions', 'settings', 'startTimeoutMs', 'healthIntervalMs'].includes(k)) p.add(k, 'is not a manifest field');
  }
  if (p.list.length) {
    throw Errors.PLUGIN_INVALID(`The plugin manifest ${file} is invalid: ${p.list.map((d) => `${d.field} ${d.message}`).join('; ')}. Fix it and start again.`, p.list);
  }
  return { id, version, description, dir, command: command as string[], proto, permissions: permissions as string[], settings, startTimeoutMs, healthIntervalMs };
}

function wholeNumber(p: Problems, field: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max) return v;
  p.add(field, `must be a whole number from ${min} to ${max}`);
  return fallback;
}

/** `"settings": { "greeting": { "env": "WANLLMDB_…", "type": "string" | "int" | "bool", "default": …, "doc": "…" } }` → setting specs. */
function settingsOf(p: Problems, raw: unknown, id: string): SettingsSpec {
  // A program sees only its own settings: never the server's (WANLLMDB_DB may hold a password) or another plugin's.
  const prefix = `WANLLMDB_${id.toUpperCase().replace(/-/g, '_')}_`;
  if (raw === undefined) return {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return (p.add('settings', 'must be an object of named settings'), {});
  const out: Record<string, SettingSpec<unknown>> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const field = `settings.${name}`;
    const s = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
    if (!SETTING_NAME.test(name)) p.add(field, 'must be named in camelCase');
    if (typeof s.env !== 'string' || !ENV.test(s.env)) p.add(`${field}.env`, 'must look like WANLLMDB_SOME_NAME');
    else if (!s.env.startsWith(prefix)) p.add(`${field}.env`, `must start with ${prefix} (the plugin's own prefix)`);
    if (typeof s.doc !== 'string' || !s.doc.trim()) p.add(`${field}.doc`, 'is required: one line that says what it does');
    const def = s.default;
    const env = String(s.env);
    const doc = String(s.doc ?? '');
    switch (s.type) {
      case 'string':
        if (def !== undefined && typeof def !== 'string') p.add(`${field}.default`, 'must be a string');
        if (ENV.test(env) && doc) out[name] = setting.string({ env, doc, default: def as string | undefined, secret: s.secret === true });
        break;
      case 'int': {
        const min = typeof s.min === 'number' ? s.min : 0;
        const max = typeof s.max === 'number' ? s.max : Number.MAX_SAFE_INTEGER;
        if (typeof def !== 'number' || !Number.isSafeInteger(def) || def < min || def > max) p.add(`${field}.default`, `must be a whole number from ${min} to ${max}`);
        else if (ENV.test(env) && doc) out[name] = setting.int({ env, doc, default: def, min, max });
        break;
      }
      case 'bool':
        if (typeof def !== 'boolean') p.add(`${field}.default`, 'must be true or false');
        else if (ENV.test(env) && doc) out[name] = setting.bool({ env, doc, default: def });
        break;
      default:
        p.add(`${field}.type`, 'must be "string", "int" or "bool"');
    }
  }
  return out;
}
