import { describe, expect, it } from 'vitest';
import { projects, tracking } from './gen/index.js';
import { bindHttp, httpClient, httpRoute, type HttpTransport } from './http-client.js';

describe('the generated HTTP client', () => {
  it('fills path segments from the request and sends the rest as the query of a GET', () => {
    const m = tracking.v1.RunService.methods!.listRuns!;
    expect(bindHttp(m, { projectId: 'p/1', filter: 'state = "running"', limit: 20, cursor: '' })).toEqual({
      verb: 'GET',
      path: '/api/v1/projects/p%2F1/runs?filter=state+%3D+%22running%22&limit=20',
      body: undefined,
    });
  });

  it('sends the rest of the request as the body when the binding says body: "*"', () => {
    expect(bindHttp(projects.v1.ProjectService.methods!.updateProject!, { id: 'abc', name: 'renamed' })).toEqual({ verb: 'PATCH', path: '/api/v1/projects/abc', body: { name: 'renamed' } });
  });

  it('refuses, naming the field, a request that leaves out a path segment', () => {
    expect(() => bindHttp(projects.v1.ProjectService.methods!.getProject!, {})).toThrow(/GetProject needs "id"/);
  });

  it('is typed from the service and calls the transport once per call', async () => {
    const sent: unknown[][] = [];
    const transport: HttpTransport = { send: async (...args) => (sent.push(args), { data: { id: 'abc', name: 'x' } }) };
    const client = httpClient(projects.v1.ProjectService, transport);
    const res = await client.getProject({ id: 'abc' });
    expect(res.data?.name).toBe('x');
    expect(sent).toEqual([['GET', '/api/v1/projects/abc', undefined, undefined]]);
    // Client streams are the SDK's (uploads), and raw-bytes answers are fetched by path: neither is a client method.
    const files = httpClient(tracking.v1.RunFileService, transport);
    expect(['uploadFile' in files, 'downloadFile' in files, 'listFiles' in files]).toEqual([false, false, true]);
  });

  it('gives the typed route of a download, for a link or a fetch by hand', () => {
    expect(httpRoute(tracking.v1.RunFileService, 'downloadFile', { runId: 'r1', path: 'model dir/w.pt' }).path).toBe('/api/v1/runs/r1/files:download?path=model+dir%2Fw.pt');
  });
});
