import { Errors } from '../errors.js';
import { EpochCache } from './access-epoch.js';
import type { Principal, ResolvedResource, ResourceRef } from './auth.js';

/**
 * Finds one resource of a type by the id (or, for projects, the slug) a
 * request names. Resolves to undefined when there is none. `principal`
 * scopes names that are only unique per organisation.
 */
export type ResourceResolver = (id: string, principal: Principal) => Promise<ResolvedResource | undefined>;

/**
 * Where each plugin says how to find the resources it owns (projects →
 * `project`, tracking → `run`, auth → `org`, `team`), so authorisation can
 * place any resource a method names in the org → project tree without
 * reading another plugin's tables. Depend on it with `deps: { resources: coreServices.resources }`.
 */
export interface ResolverOptions {
  /**
   * Where a resource of this type sits may be reused while the access epoch
   * has not moved (ADR 0015). Only for a type whose placement depends on the
   * id and the caller's organisation alone, and whose owning tables move the
   * epoch (`accessEpochTriggers`) on every change that could move or remove it.
   */
  reuse?: boolean;
}

export class ResourceDirectory {
  private readonly resolvers = new Map<string, { plugin: string; resolve: ResourceResolver; reused?: EpochCache<ResolvedResource> }>();

  define(plugin: string, type: string, resolve: ResourceResolver, options: ResolverOptions = {}): void {
    const had = this.resolvers.get(type);
    if (had) throw Errors.PLUGIN_DUPLICATE(`Resource type "${type}" is defined by both "${had.plugin}" and "${plugin}". Define each type once.`);
    this.resolvers.set(type, { plugin, resolve, ...(options.reuse ? { reused: new EpochCache<ResolvedResource>() } : {}) });
  }

  has(type: string): boolean {
    return this.resolvers.has(type);
  }

  types(): string[] {
    return [...this.resolvers.keys()].sort();
  }

  async resolve(ref: ResourceRef, principal: Principal): Promise<ResolvedResource | undefined> {
    const r = this.resolvers.get(ref.type);
    if (!r) throw Errors.INTERNAL(`No plugin defines resource type "${ref.type}".`);
    if (!r.reused) return r.resolve(ref.id, principal);
    return r.reused.get(principal.accessEpoch, `${ref.id}\u0000${principal.orgId}`, async () => {
      const found = await r.resolve(ref.id, principal);
      return found && Object.freeze(found);
    });
  }
}
