/** The shapes the server's JSON API returns, as the UI reads them. */

/** A run as `GET /api/v1/runs/{id}` and the run lists return it. */
export interface Run extends Record<string, unknown> {
  id: string;
  projectId: string;
  name: string;
  group: string;
  jobType: string;
  tags: string[];
  notes: string;
  state: string;
  exitCode?: number;
  config: Record<string, unknown>;
  summary: Record<string, unknown>;
  git?: { commit?: string; branch?: string; remote?: string; dirty?: boolean };
  environment?: { host?: string; os?: string; runtime?: string; command?: string; pid?: number };
  url: string;
  createdBy: string;
  startedAt: string;
  finishedAt: string;
  heartbeatAt: string;
  createdAt: string;
  updatedAt: string;
}

export interface Project {
  id: string;
  name: string;
  slug: string;
  description: string;
  visibility: 'private' | 'public';
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  organizationId?: string;
}

export interface Org {
  id: string;
  name: string;
  slug: string;
  description: string;
  personal: boolean;
  createdAt: string;
}

/** A member of an organisation: a user or a service account. */
export interface OrgMember {
  userId: string;
  username: string;
  email: string;
  role: string;
  kind: string;
  joinedAt: string;
}

export interface Team {
  id: string;
  name: string;
  description: string;
  createdAt: string;
}

export interface Role {
  id: string;
  name: string;
  permissions: string[];
  builtin: boolean;
}

/** The `meta` of a paged list. */
export interface PageMeta {
  total: number;
  page: number;
  pageSize: number;
  totalPages: number;
}
