import { Errors } from '../errors.js';
import type { Plugin } from './define-plugin.js';

/**
 * Orders plugins so each comes after the owners of the refs it depends on
 * (stable: ties keep the order given). Duplicate ids, missing owners and
 * cycles are errors that name the plugins (and refs) involved.
 */
export function orderPlugins(plugins: readonly Plugin[]): Plugin[] {
  const byId = new Map<string, Plugin>();
  for (const p of plugins) {
    if (byId.has(p.id)) throw Errors.PLUGIN_DUPLICATE(`Plugin "${p.id}" is registered twice. Pass each plugin once.`);
    byId.set(p.id, p);
  }
  for (const p of plugins) {
    for (const dep of p.dependsOn) {
      if (!byId.has(dep)) {
        const refs = Object.values(p.deps).filter((r) => r.owner === dep).map((r) => `"${r.id}"`).join(', ');
        throw Errors.PLUGIN_MISSING_DEPENDENCY(
          `Plugin "${p.id}" depends on ${refs} of plugin "${dep}", which is not loaded. Add the "${dep}" plugin or remove "${p.id}".`,
          [{ field: p.id, message: `needs plugin ${dep}` }],
        );
      }
    }
  }
  const out: Plugin[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (p: Plugin, path: string[]) => {
    const s = state.get(p.id);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(p.id)), p.id].join(' → ');
      throw Errors.PLUGIN_CYCLE(`Plugins depend on each other in a cycle: ${cycle}. Break the cycle with an event or a shared plugin.`, [
        { field: p.id, message: `cycle ${cycle}` },
      ]);
    }
    state.set(p.id, 'visiting');
    for (const dep of p.dependsOn) visit(byId.get(dep)!, [...path, p.id]);
    state.set(p.id, 'done');
    out.push(p);
  };
  for (const p of plugins) visit(p, []);
  return out;
}
