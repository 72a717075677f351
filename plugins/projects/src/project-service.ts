import { assertId, defineEvent, Errors, isId, newId, pageMeta, Problems, slugify, TEXT_LIMITS, type AccessScope, type CallContext, type Clock, type EventBus, type Principal, type ResolvedResource } from '@wanllmdb/core';
import type { JsonObject, projects } from '@wanllmdb/proto';
import type { ProjectChanges, ProjectRepository } from './project-repository.js';
import type { ProjectsApi } from './projects-api.js';

type Handlers = projects.v1.ProjectServiceHandlers<CallContext>;
type ProjectEvent = projects.v1.ProjectEvent;

/** A project was created, updated or deleted (published by every replica's handlers; `kind` is also the last subject token). */
export const projectEvent = defineEvent<ProjectEvent>()({ plugin: 'projects', subject: 'projects.{kind}' });
const MAX_NAME = TEXT_LIMITS.name;
const MAX_DESCRIPTION = TEXT_LIMITS.description;
const MAX_SETTINGS_BYTES = 64 * 1024;
const MAX_PAGE_SIZE = 100;

/** The checks of a project's fields, in core's one validation style. */
class ProjectProblems extends Problems {
  constructor(what = 'The project') {
    super(what);
  }

  settings(value: JsonObject): JsonObject {
    return this.jsonSize('settings', value, MAX_SETTINGS_BYTES);
  }
}

const notFound = (id: string) => Errors.NOT_FOUND(`Project ${id} does not exist. List projects with GET /api/v1/projects.`, [{ field: 'id', message: 'no such project' }]);

/** The ProjectService handlers: one implementation behind gRPC, HTTP and in-process calls. */
export function projectHandlers(repo: ProjectRepository, bus: EventBus, clock: Clock): Handlers {
  const announce = (kind: ProjectEvent['kind'], project: projects.v1.Project) =>
    projectEvent.publish(bus, { kind }, { kind, project });

  return {
    async createProject(req, ctx) {
      const p = new ProjectProblems();
      const name = p.line('name', req.name, MAX_NAME, { required: true });
      const slug = req.slug ? req.slug : slugify(name);
      if (req.slug && !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(req.slug)) p.add('slug', 'must be lower-case letters, digits and single dashes');
      else if (!slug && name) p.add('name', 'needs at least one letter or digit (or give a slug)');
      const visibility = req.visibility || 'private'; // the contract's closed set; '' is the default
      const description = p.text('description', req.description, MAX_DESCRIPTION);
      const settings = p.settings(req.settings ?? {});
      p.throwIfAny();
      // An organisation the request names was authorised by the host; the caller's own is checked here.
      const organizationId = req.organizationId ? ctx.resources.find((r) => r.type === 'org')?.id ?? req.organizationId : ctx.principal.orgId;
      if (!req.organizationId && organizationId) await ctx.authorize('projects:create', [{ type: 'org', id: organizationId }]);
      if (await repo.slugExists(slug, organizationId)) {
        throw Errors.ALREADY_EXISTS(`A project with slug "${slug}" already exists. Choose another name or pass a different slug.`, [{ field: 'slug', message: 'taken' }]);
      }
      const project = await repo
        .insert({ id: newId(), name, slug, organizationId, description, visibility, settings, createdBy: ctx.principal.id, now: clock.now() })
        .catch(async (e) => {
          // Two creators raced for one slug: the unique index decided.
          if (await repo.slugExists(slug, organizationId)) throw Errors.ALREADY_EXISTS(`A project with slug "${slug}" already exists. Choose another name.`, [{ field: 'slug', message: 'taken' }]);
          throw e;
        });
      await announce('created', project);
      return { data: project };
    },

    async listProjects(req, ctx) {
      const p = new ProjectProblems('The list request');
      const { page, pageSize, offset } = p.page(req.page, req.pageSize, MAX_PAGE_SIZE);
      const search = p.line('search', req.search, MAX_NAME);
      p.throwIfAny();
      const scope = await ctx.access('projects:read');
      const { items, total } = await repo.list({ offset, limit: pageSize, search, scope });
      return { data: items, meta: pageMeta(total, page, pageSize) };
    },

    async getProject(req) {
      const id = assertId(req.id);
      const project = await repo.get(id);
      if (!project) throw notFound(id);
      return { data: project };
    },

    async updateProject(req) {
      const id = assertId(req.id);
      const p = new ProjectProblems();
      const changes: ProjectChanges = {};
      if (req.name !== undefined) changes.name = p.line('name', req.name, MAX_NAME, { required: true });
      if (req.description !== undefined) changes.description = p.text('description', req.description, MAX_DESCRIPTION);
      if (req.visibility) changes.visibility = req.visibility;
      if (req.settings !== undefined) changes.settings = p.settings(req.settings);
      p.throwIfAny();
      const project = await repo.update(id, changes, clock.now());
      if (!project) throw notFound(id);
      await announce('updated', project);
      return { data: project };
    },

    async deleteProject(req) {
      const id = assertId(req.id);
      const project = await repo.get(id);
      if (!project || !(await repo.delete(id))) throw notFound(id);
      await announce('deleted', project);
      return {};
    },

    async watchProjects(_req, ctx, send) {
      // Only the projects the caller may see; forward in order, a slow client backs up its own queue only.
      const scope = await ctx.access('projects:read');
      let chain = Promise.resolve();
      const sub = await projectEvent.subscribe(bus, {}, (event) => {
        if (!event.project || !visibleIn(scope, event.project)) return;
        chain = chain.then(() => send(event)).catch(() => undefined);
      });
      try {
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) return resolve();
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } finally {
        await sub.unsubscribe();
      }
    },
  };
}

function visibleIn(scope: AccessScope, p: projects.v1.Project): boolean {
  return scope.all || scope.orgIds.includes(p.organizationId) || scope.projectIds.includes(p.id) || (scope.publicProjects && p.visibility === 'public');
}


/** A project by its UUID, or by its slug (or name) within the caller's own organisation. */
async function lookup(repo: ProjectRepository, ref: string, principal: Principal): Promise<projects.v1.Project | undefined> {
  if (isId(ref)) return repo.get(ref.toLowerCase());
  const slug = slugify(ref);
  return slug ? repo.getBySlug(slug, principal.orgId) : undefined;
}

/** How authorisation finds a project a request names: UUID, or slug/name in the caller's organisation. */
export function projectResolver(repo: ProjectRepository) {
  return async (ref: string, principal: Principal): Promise<ResolvedResource | undefined> => {
    const p = await lookup(repo, ref, principal);
    return p && { type: 'project', id: p.id, projectId: p.id, orgId: p.organizationId, visibility: p.visibility === 'public' ? 'public' : 'private' };
  };
}

/** The in-process API over the same repository and handlers (so events and checks are shared). */
export function projectsApi(repo: ProjectRepository, handlers: Handlers): ProjectsApi {
  return {
    find: (ref, principal) => lookup(repo, ref, principal),
    async ensure(idOrName, ctx) {
      const existing = await lookup(repo, idOrName, ctx.principal);
      if (existing) return existing;
      if (isId(idOrName)) throw notFound(idOrName); // a UUID names a project, it is never a new project's name
      try {
        const made = await handlers.createProject({ name: idOrName, slug: '', description: '', visibility: '', organizationId: '' }, { ...ctx, resources: [] });
        return made.data!;
      } catch (e) {
        // Another writer created it first.
        const raced = await lookup(repo, idOrName, ctx.principal);
        if (raced) return raced;
        throw e;
      }
    },
  };
}
