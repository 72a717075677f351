/**
 * Where a lineage graph's nodes go: columns by distance along the edges'
 * direction from the node the graph is about (what made it to the left, what
 * was made from it to the right), each column's nodes stacked in order.
 */

export interface LayoutNode {
  id: string;
}

export interface LayoutEdge {
  from: string;
  to: string;
}

export interface Placed {
  id: string;
  /** Column: 0 is the focus, negative upstream, positive downstream. */
  column: number;
  /** Position in its column, from 0. */
  row: number;
}

/**
 * Columns by a walk from `focus`: following an edge forward puts its end one
 * column right of its start, backward one column left; a node keeps the
 * column it was first reached at (nearest first). Nodes not connected to the
 * focus go in a column after the rest.
 */
export function layoutLineage(nodes: readonly LayoutNode[], edges: readonly LayoutEdge[], focus: string): Placed[] {
  const ids = new Set(nodes.map((n) => n.id));
  const out = new Map<string, string[]>();
  const into = new Map<string, string[]>();
  for (const e of edges) {
    if (!ids.has(e.from) || !ids.has(e.to)) continue;
    (out.get(e.from) ?? out.set(e.from, []).get(e.from)!).push(e.to);
    (into.get(e.to) ?? into.set(e.to, []).get(e.to)!).push(e.from);
  }
  const column = new Map<string, number>();
  const order: string[] = [];
  if (ids.has(focus)) {
    column.set(focus, 0);
    order.push(focus);
  }
  for (let i = 0; i < order.length; i++) {
    const id = order[i]!;
    const c = column.get(id)!;
    for (const next of out.get(id) ?? []) if (!column.has(next)) column.set(next, c + 1), order.push(next);
    for (const prev of into.get(id) ?? []) if (!column.has(prev)) column.set(prev, c - 1), order.push(prev);
  }
  const last = Math.max(0, ...column.values());
  for (const n of nodes) if (!column.has(n.id)) column.set(n.id, last + 1), order.push(n.id);
  const rows = new Map<number, number>();
  return order.map((id) => {
    const c = column.get(id)!;
    const row = rows.get(c) ?? 0;
    rows.set(c, row + 1);
    return { id, column: c, row };
  });
}
