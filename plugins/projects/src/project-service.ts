import { assertId, defineEvent, Errors, isId, newId, slugify, type AccessScope, type CallContext, type Clock, type ErrorDetail, type EventBus, type Principal, type ResolvedResource } from '@wanllmdb/core';
import type { JsonObject, projects } from '@wanllmdb/proto';
import type { ProjectChanges, ProjectRepository } from './project-repository.js';
import type { ProjectsApi } from './projects-api.js';

type Handlers = projects.v1.ProjectServiceHandlers<CallContext>;
type ProjectEvent = projects.v1.ProjectEvent;

/** A project was created, updated or deleted (published by every replica's handlers; `kind` is also the last subject token). */
export const projectEvent = defineEvent<ProjectEvent>()({ plugin: 'projects', subject: 'projects.{kind}' });
const MAX_NAME = 255;
const MAX_DESCRIPTION = 10_000;
const MAX_SETTINGS_BYTES = 64 * 1024;
const MAX_PAGE_SIZE = 100;
const VISIBILITIES = ['public', 'private'] as const;

function checkName(name: string, problems: ErrorDetail[]): string {
  const n = name.trim();
  if (!n) problems.push({ field: 'name', message: 'is required' });
  else if (n.length > MAX_NAME) problems.push({ field: 'name', message: `is longer than ${MAX_NAME} characters` });
  else if (/[\u0000-\u001f\u007f]/.test(n)) problems.push({ field: 'name', message: 'contains control characters' });
  return n;
}

function checkVisibility(v: string, problems: ErrorDetail[]): 'public' | 'private' {
  if (!(VISIBILITIES as readonly string[]).includes(v)) problems.push({ field: 'visibility', message: 'must be "public" or "private"' });
  return v as 'public' | 'private';
}

function checkDescription(d: string, problems: ErrorDetail[]): string {
  if (d.length > MAX_DESCRIPTION) problems.push({ field: 'description', message: `is longer than ${MAX_DESCRIPTION} characters` });
  return d;
}

function checkSettings(s: JsonObject, problems: ErrorDetail[]): JsonObject {
  if (Buffer.byteLength(JSON.stringify(s)) > MAX_SETTINGS_BYTES) problems.push({ field: 'settings', message: `is larger than ${MAX_SETTINGS_BYTES} bytes` });
  return s;
}

function throwIfProblems(problems: ErrorDetail[]): void {
  if (problems.length) {
    const summary = problems.map((p) => `${p.field} ${p.message}`).join('; ');
    throw Errors.VALIDATION(`The project is invalid: ${summary}. Fix these fields and retry.`, problems);
  }
}

const notFound = (id: string) => Errors.NOT_FOUND(`Project ${id} does not exist. List projects with GET /api/v1/projects.`, [{ field: 'id', message: 'no such project' }]);

/** The ProjectService handlers: one implementation behind gRPC, HTTP and in-process calls. */
export function projectHandlers(repo: ProjectRepository, bus: EventBus, clock: Clock): Handlers {
  const announce = (kind: ProjectEvent['kind'], project: projects.v1.Project) =>
    projectEvent.publish(bus, { kind }, { kind, project });

  return {
    async createProject(req, ctx) {
      const problems: ErrorDetail[] = [];
      const name = checkName(req.name, problems);
      const slug = req.slug ? req.slug : slugify(name);
      if (req.slug && !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(req.slug)) problems.push({ field: 'slug', message: 'must be lower-case letters, digits and single dashes' });
      else if (!slug && name) problems.push({ field: 'name', message: 'needs at least one letter or digit (or give a slug)' });
      const visibility = checkVisibility(req.visibility || 'private', problems);
      const description = checkDescription(req.description, problems);
      const settings = checkSettings(req.settings ?? {}, problems);
      throwIfProblems(problems);
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
      const page = req.page || 1;
      const pageSize = req.pageSize || 20;
      const problems: ErrorDetail[] = [];
      if (page < 1) problems.push({ field: 'page', message: 'must be 1 or more' });
      if (pageSize < 1 || pageSize > MAX_PAGE_SIZE) problems.push({ field: 'pageSize', message: `must be from 1 to ${MAX_PAGE_SIZE}` });
      if (req.search.length > MAX_NAME) problems.push({ field: 'search', message: `is longer than ${MAX_NAME} characters` });
      if (problems.length) throw Errors.VALIDATION(`The list request is invalid: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}.`, problems);
      const scope = await ctx.access('projects:read');
      const { items, total } = await repo.list({ offset: (page - 1) * pageSize, limit: pageSize, search: req.search, scope });
      return { data: items, meta: { total, page, pageSize, totalPages: Math.ceil(total / pageSize) } };
    },

    async getProject(req) {
      const id = assertId(req.id);
      const project = await repo.get(id);
      if (!project) throw notFound(id);
      return { data: project };
    },

    async updateProject(req) {
      const id = assertId(req.id);
      const problems: ErrorDetail[] = [];
      const changes: ProjectChanges = {};
      if (req.name !== undefined) changes.name = checkName(req.name, problems);
      if (req.description !== undefined) changes.description = checkDescription(req.description, problems);
      if (req.visibility !== undefined) changes.visibility = checkVisibility(req.visibility, problems);
      if (req.settings !== undefined) changes.settings = checkSettings(req.settings, problems);
      throwIfProblems(problems);
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
