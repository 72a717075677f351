import { Errors } from '../errors.js';

/**
 * A plugin's setting: its environment variable, type, default and what it
 * means. The kernel reads and checks every plugin's settings when it starts
 * — a bad value fails start naming the variable — and `wanllmdb serve
 * --help` lists them. Plugins never read `process.env` themselves.
 */
export interface SettingSpec<T> {
  readonly kind: 'wanllmdb.setting';
  /** WANLLMDB_… */
  readonly env: string;
  /** For --help: "integer 1..22", "string", "secret". */
  readonly type: string;
  readonly doc: string;
  /** Shown by --help (secrets are not). */
  readonly defaultText: string;
  readonly secret: boolean;
  /** A value given in code (a plugin factory's option): it wins over the environment. */
  readonly value: T | undefined;
  /** The value from the raw text (environment) or a value given in code, or the default when neither. */
  resolve(raw: unknown, source: string): T;
}

export type SettingsSpec = Readonly<Record<string, SettingSpec<unknown>>>;
export type SettingsOf<S extends SettingsSpec> = { readonly [K in keyof S]: S[K] extends SettingSpec<infer T> ? T : never };

const ENV = /^WANLLMDB_[A-Z0-9_]+$/;
/** Property names code reads from any object without meaning a setting. */
const GENERIC_PROBES = new Set(['toJSON', 'then', 'constructor', 'valueOf', 'toString']);

function invalid(source: string, raw: unknown, expected: string, secret: boolean): never {
  const shown = secret ? '(hidden)' : JSON.stringify(typeof raw === 'string' ? raw : String(raw));
  throw Errors.CONFIG_INVALID(`Setting ${source} has an invalid value ${shown}: expected ${expected}. Fix or unset it.`, [
    { field: source, message: `expected ${expected}` },
  ]);
}

function spec<T>(env: string, type: string, doc: string, defaultText: string, secret: boolean, value: T | undefined, resolve: SettingSpec<T>['resolve']): SettingSpec<T> {
  if (!ENV.test(env)) throw Errors.PLUGIN_INVALID(`Setting variable ${JSON.stringify(env)} must look like WANLLMDB_SOME_NAME.`);
  if (!doc) throw Errors.PLUGIN_INVALID(`Setting ${env} needs a doc: one line that says what it does.`);
  return Object.freeze({ kind: 'wanllmdb.setting' as const, env, type, doc, defaultText, secret, value, resolve });
}

/** Declares plugin settings (see SettingSpec). */
export const setting = {
  /** A whole number within [min, max]. */
  int(o: { env: string; default: number; min: number; max: number; doc: string; value?: number }): SettingSpec<number> {
    const expected = `a whole number from ${o.min.toLocaleString('en')} to ${o.max.toLocaleString('en')}`;
    return spec(o.env, `integer ${o.min}..${o.max}`, o.doc, o.default.toLocaleString('en'), false, o.value, (raw, source) => {
      if (raw === undefined) return o.default;
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
      return Number.isSafeInteger(n) && n >= o.min && n <= o.max ? n : invalid(source, raw, expected, false);
    });
  },

  /** Text; without a default the value is undefined when unset. A secret is never shown (--help, errors). */
  string<D extends string | undefined = undefined>(o: { env: string; default?: D; doc: string; secret?: boolean; value?: string }): SettingSpec<D extends string ? string : string | undefined> {
    const secret = o.secret ?? false;
    return spec(o.env, secret ? 'secret' : 'string', o.doc, o.default === undefined ? '(none)' : secret ? '(hidden)' : o.default, secret, o.value, (raw, source) => {
      if (raw === undefined) return o.default as never;
      return (typeof raw === 'string' && raw.length > 0 ? raw : invalid(source, raw, 'a non-empty string', secret)) as never;
    });
  },

  /** true/false (also 1/0, yes/no, on/off). */
  bool(o: { env: string; default: boolean; doc: string; value?: boolean }): SettingSpec<boolean> {
    return spec(o.env, 'boolean', o.doc, String(o.default), false, o.value, (raw, source) => {
      if (raw === undefined) return o.default;
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      return invalid(source, raw, 'true or false', false);
    });
  },
};

/**
 * Resolves a plugin's settings: a value given in code, else the
 * environment's, else the default. The result refuses to read a setting the
 * plugin did not declare (WLDB_ERR_PLUGIN_INVALID), so a typo fails start
 * instead of reading undefined.
 */
export function resolveSettings<S extends SettingsSpec>(pluginId: string, specs: S, env: NodeJS.ProcessEnv): SettingsOf<S> {
  const values: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    if (s.value !== undefined) values[name] = s.resolve(s.value, `${name} of plugin "${pluginId}"`);
    else {
      const raw = env[s.env];
      values[name] = s.resolve(raw === undefined || raw === '' ? undefined : raw, s.env);
    }
  }
  return new Proxy(Object.freeze(values), {
    get(target, name) {
      // Generic probes (JSON.stringify, await, util.inspect) are not settings reads.
      if (typeof name === 'symbol' || name in target || GENERIC_PROBES.has(name)) return Reflect.get(target, name);
      throw Errors.PLUGIN_INVALID(
        `Plugin "${pluginId}" read setting ${JSON.stringify(name)}, which it does not declare. Declare it in the plugin's settings (name, env, type, default, doc). Declared: ${Object.keys(specs).join(', ') || 'none'}.`,
        [{ field: `${pluginId}.settings.${name}`, message: 'not declared' }],
      );
    },
  }) as SettingsOf<S>;
}

/** Lines for `--help`: each setting's variable, type, default and doc. */
export function describeSettings(plugins: readonly { id: string; settings: SettingsSpec }[]): string[] {
  const lines: string[] = [];
  for (const p of plugins) {
    const entries = Object.values(p.settings);
    if (entries.length === 0) continue;
    lines.push(`Plugin "${p.id}":`);
    for (const s of entries) lines.push(`  ${s.env.padEnd(46)} ${s.doc} (${s.type}; default ${s.defaultText})`);
  }
  return lines;
}
