import { withQuery } from '@wanllmdb/web/kit';

/** The artifacts tab's state, all of it in the address (`/projects/<id>/artifacts?…`), so links, reloads and back/forward keep it. */
export interface ArtifactsState {
  /** The list: only this type, names containing this. */
  type?: string;
  search?: string;
  /** The open collection (an artifact id). */
  artifact?: string;
  /** Its selected version ("v3"). */
  v?: string;
  /** What the collection view shows. */
  view?: ArtifactView;
  /** Files: the directory shown ("data/train/"), the file previewed. */
  dir?: string;
  file?: string;
  /** Diff: the two versions. */
  from?: string;
  to?: string;
  /** Lineage: edges followed, and which way. */
  hops?: number;
  direction?: 'upstream' | 'downstream' | 'both';
}

export const VIEWS = ['versions', 'files', 'diff', 'lineage', 'aliases'] as const;
export type ArtifactView = (typeof VIEWS)[number];

/** The state a query holds. */
export function stateOf(query: URLSearchParams): ArtifactsState {
  const get = (k: string) => query.get(k) || undefined;
  const view = get('view');
  const hops = Number(get('hops'));
  const direction = get('direction');
  return {
    type: get('type'),
    search: get('search'),
    artifact: get('artifact'),
    v: get('v'),
    view: (VIEWS as readonly string[]).includes(view ?? '') ? (view as ArtifactView) : undefined,
    dir: get('dir'),
    file: get('file'),
    from: get('from'),
    to: get('to'),
    hops: Number.isInteger(hops) && hops >= 1 && hops <= 10 ? hops : undefined,
    direction: direction === 'upstream' || direction === 'downstream' || direction === 'both' ? direction : undefined,
  };
}

/** The address of the artifacts tab of a project in a state. */
export function artifactsHref(projectId: string, state: ArtifactsState = {}): string {
  return withQuery(`/projects/${encodeURIComponent(projectId)}/artifacts`, {
    type: state.type,
    search: state.search,
    artifact: state.artifact,
    v: state.v,
    view: state.view,
    dir: state.dir,
    file: state.file,
    from: state.from,
    to: state.to,
    hops: state.hops,
    direction: state.direction,
  });
}

/** A run's page. */
export const runHref = (runId: string, tab?: string): string => `/runs/${encodeURIComponent(runId)}${tab ? `/${tab}` : ''}`;
