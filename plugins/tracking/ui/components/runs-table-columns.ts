/**
 * The runs table's columns: what a column shows of a run and how it sorts,
 * the config and summary keys the loaded runs offer as columns, and the
 * columns a person chose (kept per project in localStorage).
 */
import type { tracking } from '@wanllmdb/proto/client';

type Run = tracking.v1.Run;

const BASE_COLUMNS = ['name', 'state', 'created', 'duration', 'tags'] as const;
const DEFAULT_EXTRA = 4;
const MAX_KEY_DEPTH = 4;
/** The width of the row checkbox column (always the first, always pinned). */
const CHECK_WIDTH = 36;

/** The server sort field of a column (undefined: not sortable on the server). */
export function sortField(column: string): string | undefined {
  if (column === 'name' || column === 'state') return column;
  if (column === 'created') return 'created_at';
  if (column.startsWith('config.') || column.startsWith('summary.')) return column;
  return undefined;
}

/** Leaf paths of a JSON object (`model.layers`), arrays and deep objects as one value. */
function leafKeys(obj: Record<string, unknown> | undefined, prefix = '', depth = 0, out: Set<string> = new Set()): Set<string> {
  if (!obj) return out;
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v) && depth < MAX_KEY_DEPTH) leafKeys(v as Record<string, unknown>, path, depth + 1, out);
    else out.add(path);
  }
  return out;
}

/** The value at a dotted path; a key that itself contains dots (`train/loss` has none, `a.b` might) is tried whole first. */
export function valueAt(obj: Record<string, unknown> | undefined, path: string): unknown {
  if (!obj) return undefined;
  if (path in obj) return obj[path];
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function formatValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** The text of a `config.*` or `summary.*` column's cell. */
export const keyCell = (run: Run, column: string): string => formatValue(column.startsWith('config.') ? valueAt(run.config, column.slice(7)) : valueAt(run.summary, column.slice(8)));

export const label = (c: string) => (c === 'created' ? 'Created' : c === 'duration' ? 'Duration' : c === 'name' ? 'Name' : c === 'state' ? 'State' : c === 'tags' ? 'Tags' : c);
const widthOf = (c: string) => (c === 'name' ? 220 : c === 'state' ? 96 : c === 'created' ? 150 : c === 'duration' ? 96 : c === 'tags' ? 160 : 130);

/** The `grid-template-columns` of a header or row showing these columns (after the checkbox column). */
export const gridTemplate = (cols: string[]): string => `${CHECK_WIDTH}px ${cols.map((c) => `${widthOf(c)}px`).join(' ')}`;

/** The config and summary keys of the runs loaded so far (the columns one can add, the keys one can group by). */
export class RunKeys {
  readonly config = new Set<string>();
  readonly summary = new Set<string>();

  /** Adds a run's config and summary keys; true when there are new ones. */
  note(run: Run): boolean {
    const before = this.config.size + this.summary.size;
    leafKeys(run.config, '', 0, this.config);
    leafKeys(run.summary, '', 0, this.summary);
    return this.config.size + this.summary.size !== before;
  }

  clear(): void {
    this.config.clear();
    this.summary.clear();
  }

  /** `config.*` columns, sorted. */
  configColumns(): string[] {
    return [...this.config].sort().map((k) => `config.${k}`);
  }

  /** Every column a run may show. */
  all(): string[] {
    return [...BASE_COLUMNS, ...this.configColumns(), ...[...this.summary].sort().map((k) => `summary.${k}`)];
  }
}

interface ColumnPrefs {
  columns: string[];
  pinned: string[];
}

/**
 * The columns shown, in order, and the pinned ones: the project's saved
 * choice, or (none saved) the base columns and the first few config and
 * summary keys. `changed` is called after every change of the choice.
 */
export class ColumnChoice {
  private prefs: ColumnPrefs | undefined;
  private projectId = '';

  constructor(
    private readonly keys: RunKeys,
    private readonly changed: () => void,
  ) {}

  /** Reads the choice saved for a project. */
  open(projectId: string): void {
    this.projectId = projectId;
    this.prefs = this.loadPrefs();
  }

  /** The visible columns, in order, pinned first. */
  get shown(): string[] {
    const p = this.current();
    const pinned = p.columns.filter((c) => p.pinned.includes(c));
    return [...pinned, ...p.columns.filter((c) => !p.pinned.includes(c))];
  }

  get pinned(): Set<string> {
    return new Set(this.current().pinned);
  }

  /** Left offsets of pinned columns (the checkbox column is always pinned). */
  pinOffsets(cols: string[]): Map<string, number> {
    const pinned = this.pinned;
    const out = new Map<string, number>();
    let left = CHECK_WIDTH;
    for (const c of cols) {
      if (!pinned.has(c)) break;
      out.set(c, left);
      left += widthOf(c);
    }
    return out;
  }

  setShown(column: string, shown: boolean): void {
    const p = this.current();
    const columns = shown ? [...p.columns.filter((c) => c !== column), column] : p.columns.filter((c) => c !== column);
    this.savePrefs({ columns, pinned: p.pinned.filter((c) => columns.includes(c)) });
  }

  togglePin(column: string): void {
    const p = this.current();
    const pinned = p.pinned.includes(column) ? p.pinned.filter((c) => c !== column) : [...p.pinned, column];
    this.savePrefs({ columns: p.columns.includes(column) ? p.columns : [...p.columns, column], pinned });
  }

  move(column: string, before: string): void {
    if (column === before) return;
    const p = this.current();
    const cols = this.shown.filter((c) => c !== column);
    const at = cols.indexOf(before);
    cols.splice(at < 0 ? cols.length : at, 0, column);
    // Dropping among the pinned columns pins it; among the others unpins it.
    const beforePinned = p.pinned.includes(before);
    const pinned = beforePinned ? [...new Set([...p.pinned, column])] : p.pinned.filter((c) => c !== column);
    this.savePrefs({ columns: cols, pinned: cols.filter((c) => pinned.includes(c)) });
  }

  /** Back to the default columns. */
  reset(): void {
    localStorage.removeItem(this.storageKey);
    this.prefs = undefined;
    this.changed();
  }

  private current(): ColumnPrefs {
    return this.prefs ?? this.defaultPrefs();
  }

  private defaultPrefs(): ColumnPrefs {
    return {
      columns: [...BASE_COLUMNS, ...[...this.keys.config].slice(0, DEFAULT_EXTRA).map((k) => `config.${k}`), ...[...this.keys.summary].slice(0, DEFAULT_EXTRA).map((k) => `summary.${k}`)],
      pinned: ['name'],
    };
  }

  private get storageKey(): string {
    return `wanllmdb.runs-table.${this.projectId}`;
  }

  private loadPrefs(): ColumnPrefs | undefined {
    try {
      const raw = localStorage.getItem(this.storageKey);
      if (!raw) return undefined;
      const p = JSON.parse(raw) as ColumnPrefs;
      if (Array.isArray(p.columns) && Array.isArray(p.pinned)) return p;
    } catch {
      /* a broken entry starts over */
    }
    return undefined;
  }

  private savePrefs(p: ColumnPrefs): void {
    this.prefs = p;
    localStorage.setItem(this.storageKey, JSON.stringify(p));
    this.changed();
  }
}
