import { Errors } from '../errors.js';
import type { EventBus, Subscription } from './event-bus.js';

/** The names of the `{placeholders}` of a subject template: `'a.{x}.{y}'` → `'x' | 'y'`. */
export type SubjectParams<S extends string> = S extends `${string}{${infer P}}${infer Rest}` ? P | SubjectParams<Rest> : never;

/**
 * A typed event: its subject template (`tracking.runs.{projectId}.{kind}`),
 * the plugin that publishes it and the type of its payload. Publishers and
 * subscribers go through the ref, so the payload's type is written once (no
 * `data as X` at every subscriber) and subjects are built one way.
 * Subscribing with a parameter left out listens to every value of it.
 */
export interface EventRef<P, K extends string> {
  readonly kind: 'wanllmdb.event';
  /** The plugin that publishes it. */
  readonly owner: string;
  readonly template: string;
  /** The subject for these parameters (each a single token; `*` in a pattern). */
  subject(params: Readonly<Record<K, string>>): string;
  publish(bus: EventBus, params: Readonly<Record<K, string>>, payload: P): Promise<void>;
  subscribe(bus: EventBus, params: Readonly<Partial<Record<K, string>>>, handler: (payload: P, subject: string) => void | Promise<void>): Promise<Subscription>;
}

const TOKEN = /^[A-Za-z0-9_:-]+$/;
const TEMPLATE = /^[a-z][a-z0-9-]*(\.([a-z][a-z0-9-]*|\{[A-Za-z][A-Za-z0-9]*\}))*$/;

/**
 * Declares an event a plugin publishes:
 * `defineEvent<ProjectEvent>()({ plugin: 'projects', subject: 'projects.{kind}' })`.
 * (Two calls, so the payload type is given and the parameters are inferred.)
 */
export function defineEvent<P>() {
  return <S extends string>(opts: { plugin: string; subject: S }): EventRef<P, SubjectParams<S>> => {
    const { plugin, subject: template } = opts;
    if (!TEMPLATE.test(template) || !(template === plugin || template.startsWith(`${plugin}.`))) {
      throw Errors.PLUGIN_INVALID(
        `Event subject ${JSON.stringify(template)} of plugin "${plugin}" must start with the plugin id and be dot-separated lower-case words or {params}, e.g. "${plugin}.things.{projectId}.{kind}".`,
      );
    }
    const build = (params: Readonly<Record<string, string | undefined>>, pattern: boolean) =>
      template.replace(/\{([A-Za-z0-9]+)\}/g, (_, name: string) => {
        const value = params[name];
        if (value === undefined && pattern) return '*';
        if (value === undefined || !(TOKEN.test(value) || (pattern && value === '*'))) {
          throw Errors.VALIDATION(`Event ${template}: parameter ${name} must be one token of letters, digits, "_", ":" or "-"; got ${JSON.stringify(value)}.`, [
            { field: name, message: 'not a subject token' },
          ]);
        }
        return value;
      });
    const ref: EventRef<P, SubjectParams<S>> = {
      kind: 'wanllmdb.event',
      owner: plugin,
      template,
      subject: (params) => build(params, false),
      publish: async (bus, params, payload) => bus.publish(build(params, false), payload),
      subscribe: async (bus, params, handler) => bus.subscribe(build(params, true), (data, subject) => handler(data as P, subject)),
    };
    return Object.freeze(ref);
  };
}
