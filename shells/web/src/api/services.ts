/**
 * The server's services as the UI calls them: one client per service of the
 * .proto contract, generated (methods, paths, request and answer types) and
 * sent through the session's `api`. For a download, a link or a stream read
 * with `api.stream`, `httpRoute` gives a method's path instead.
 */
import { auth, httpClient, projects, tracking } from '@wanllmdb/proto/client';
import { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { api } from './client.js';

export { httpRoute } from '@wanllmdb/proto/client';

export const projectsApi = httpClient(projects.v1.ProjectService, api);

export const runsApi = httpClient(tracking.v1.RunService, api);
export const metricsApi = httpClient(tracking.v1.MetricService, api);
export const runLogsApi = httpClient(tracking.v1.RunLogService, api);
export const runFilesApi = httpClient(tracking.v1.RunFileService, api);
export const viewsApi = httpClient(tracking.v1.ViewService, api);

/** The artifacts plugin's service (its own contract, `plugins/artifacts/proto`). */
export const artifactsApi = httpClient(artifacts.v1.ArtifactService, api);
/** The artifacts plugin's dataset calls (validation, preview, profile, annotations). */
export const datasetsApi = httpClient(artifacts.v1.DatasetService, api);

export const authApi = httpClient(auth.v1.AuthService, api);
/** Sign-up without the session's token (a stale one must not refuse it); sign-in is `api.login`. */
export const anonymousAuthApi = httpClient(auth.v1.AuthService, api.anonymous);
export const orgsApi = httpClient(auth.v1.OrgService, api);
