import { assertId, Errors, newId, type CallContext, type Clock } from '@wanllmdb/core';
import type { ProjectsApi } from '@wanllmdb/plugin-projects';
import type { tracking } from '@wanllmdb/proto';
import type { JsonLimits } from './json-values.js';
import { findProject } from './project-ref.js';
import { LIMITS, RunProblems } from './request-checks.js';
import type { ViewChanges, ViewRepository, ViewScope } from './view-repository.js';

type Handlers = tracking.v1.ViewServiceHandlers<CallContext>;
type View = tracking.v1.View;

export interface ViewServiceDeps {
  views: ViewRepository;
  projects: ProjectsApi;
  clock: Clock;
}

export const VIEW_LIMITS = { name: 255 } as const;
export const SPEC_LIMITS: JsonLimits = { maxBytes: 256 * 1024, maxDepth: 32 };

const viewNotFound = (id: string) =>
  Errors.NOT_FOUND(`View ${id} does not exist or you have no access to it. List a project's views with GET /api/v1/projects/{project}/views.`, [
    { field: 'id', message: 'no such view' },
  ]);

/** Whether `principal` may see the view at all: personal views exist only for their owner. */
export const viewVisibleTo = (view: { scope: string; ownerId: string }, principalId: string): boolean => view.scope === 'shared' || view.ownerId === principalId;

/**
 * The ViewService handlers: saved workspaces of a project.
 *
 * Rules (the RPC host has already checked runs:read / runs:write on the
 * view's project): a personal view is invisible to everyone but its owner
 * (NOT_FOUND, as if it did not exist), so only the owner reads, changes or
 * deletes it. A shared view is read by every project reader and updated
 * (name, spec) by every project writer; only its owner changes its scope;
 * only its owner or a project administrator (projects:admin) deletes it.
 */
export function viewHandlers(deps: ViewServiceDeps): Handlers {
  const { views, projects, clock } = deps;

  /** The UUID of the project the request names by id, name or slug. */
  const projectOf = async (ref: string, ctx: CallContext): Promise<string> => (await findProject(projects, ref, ctx.principal)).id;

  const mustSee = async (idValue: unknown, ctx: CallContext): Promise<View> => {
    const id = assertId(idValue ?? '', 'id');
    const view = await views.get(id);
    if (!view || !viewVisibleTo(view, ctx.principal.id)) throw viewNotFound(id);
    return view;
  };

  return {
    async createView(req, ctx) {
      const p = new RunProblems('The view');
      const projectRef = p.line('projectId', req.projectId, LIMITS.projectRef, { required: true });
      const name = p.line('name', req.name, VIEW_LIMITS.name, { required: true });
      const scope = req.scope || 'personal';
      const spec = p.json('spec', req.spec, SPEC_LIMITS);
      p.throwIfAny();
      const projectId = await projectOf(projectRef, ctx);
      const view = await views.insert({ id: newId(), projectId, name, scope, ownerId: ctx.principal.id, spec, now: clock.now() });
      return { data: view };
    },

    async listViews(req, ctx) {
      const p = new RunProblems('The request');
      const projectRef = p.line('projectId', req.projectId, LIMITS.projectRef, { required: true });
      p.throwIfAny();
      const projectId = await projectOf(projectRef, ctx);
      return { data: await views.listVisible(projectId, ctx.principal.id) };
    },

    async getView(req, ctx) {
      return { data: await mustSee(req.id, ctx) };
    },

    async updateView(req, ctx) {
      const view = await mustSee(req.id, ctx);
      const p = new RunProblems('The view');
      const changes: ViewChanges = {};
      if (req.name !== undefined && req.name !== null) changes.name = p.line('name', req.name, VIEW_LIMITS.name, { required: true });
      if (req.scope) changes.scope = req.scope;
      if (req.spec !== undefined && req.spec !== null) changes.spec = p.json('spec', req.spec, SPEC_LIMITS);
      p.throwIfAny();
      if (changes.scope !== undefined && changes.scope !== view.scope && view.ownerId !== ctx.principal.id) {
        throw Errors.PERMISSION_DENIED(`Only the owner of view ${view.id} may change whether it is shared. Save a copy with "Save as" instead.`, [
          { field: 'scope', message: 'only the owner may change it' },
        ]);
      }
      const updated = await views.update(view.id, changes, clock.now());
      if (!updated) throw viewNotFound(view.id);
      return { data: updated };
    },

    async deleteView(req, ctx) {
      const view = await mustSee(req.id, ctx);
      if (view.ownerId !== ctx.principal.id) {
        // A shared view of someone else: project administrators only (throws PERMISSION_DENIED).
        await ctx.authorize('projects:admin', [{ type: 'project', id: view.projectId }]);
      }
      await views.delete(view.id);
      return {};
    },
  };
}
