/**
 * A small history router: every page has a real URL (deep links, reload,
 * back/forward), pages load on demand (one chunk each).
 */

export interface Route {
  /** `/runs/:id/:tab?` — `:name` matches one segment, a trailing `?` makes it optional. */
  pattern: string;
  /** The page's custom element. */
  tag: string;
  load: () => Promise<unknown>;
  /** Shown without a session (sign-in, setup). */
  public?: boolean;
}

export interface Match {
  route: Route;
  params: Record<string, string>;
  query: URLSearchParams;
}

function compile(pattern: string): RegExp {
  const parts = pattern
    .split('/')
    .filter(Boolean)
    .map((seg) => {
      const m = /^:(\w+)(\?)?$/.exec(seg);
      if (!m) return `/${seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
      return m[2] ? `(?:/(?<${m[1]}>[^/]+))?` : `/(?<${m[1]}>[^/]+)`;
    });
  return new RegExp(`^${parts.join('') || '/'}/?$`);
}

export class Router {
  private readonly compiled: { route: Route; re: RegExp }[];

  constructor(routes: Route[]) {
    this.compiled = routes.map((route) => ({ route, re: compile(route.pattern) }));
  }

  match(url: URL | Location): Match | undefined {
    for (const { route, re } of this.compiled) {
      const m = re.exec(url.pathname);
      if (m) {
        const params: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) params[k] = decodeURIComponent(v);
        return { route, params, query: new URLSearchParams(url.search) };
      }
    }
    return undefined;
  }
}

/** Goes to a path in the app (pushState + a `wl-navigate` event the shell listens to). */
export function navigate(path: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  window.dispatchEvent(new Event('wl-navigate'));
}

/**
 * Same-origin links anywhere in the page (shadow roots too) navigate in the
 * app, unless a modifier key asks for a new tab. Returns the undo.
 */
export function interceptLinks(): () => void {
  const onClick = (e: MouseEvent): void => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.composedPath().find((n): n is HTMLAnchorElement => n instanceof HTMLAnchorElement);
    if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    if (a.pathname.startsWith('/api/') || a.pathname.startsWith('/ui/')) return;
    e.preventDefault();
    navigate(a.pathname + a.search + a.hash);
  };
  document.addEventListener('click', onClick);
  return () => document.removeEventListener('click', onClick);
}
