"""Left-to-right layout of a graph: one column per topological generation.

Shared by everything that draws a graph (`nodeflow show`, the web editor's templates), so a
graph looks the same everywhere. networkx is imported here only, when a layout is asked for.
"""

from __future__ import annotations

from nodeflow.graph import Graph


def upstream(graph: Graph) -> dict[str, list[str]]:
    """{node id: the ids it takes links from, in input order} (links to unknown nodes skipped)."""
    out: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for nid, _, link in graph.links():
        out[nid].append(link.node)
    return out


def columns(graph: Graph) -> dict[str, tuple[int, int]]:
    """{node id: (column, row)}. Sources sit in column 0; every node sits one column right of
    its deepest upstream node. Within a column, nodes are ordered by the mean row of their
    upstream nodes (fewer crossing wires), then by file order. A cyclic graph falls back to
    file order in one column per node."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    ups = upstream(graph)
    g.add_edges_from((u, v) for v, us in ups.items() for u in us)
    order = {nid: i for i, nid in enumerate(graph.nodes)}
    try:
        generations = list(nx.topological_generations(g))
    except nx.NetworkXUnfeasible:
        return {nid: (i, 0) for i, nid in enumerate(graph.nodes)}
    pos: dict[str, tuple[int, int]] = {}
    for col, gen in enumerate(generations):

        def weight(nid: str) -> tuple[float, int]:
            rows = [pos[u][1] for u in ups[nid] if u in pos]
            return (sum(rows) / len(rows) if rows else -1.0, order[nid])

        for row, nid in enumerate(sorted(gen, key=weight)):
            pos[nid] = (col, row)
    return pos


def place(
    graph: Graph, sizes: dict[str, tuple[float, float]], gap_x: float = 80, gap_y: float = 60
) -> dict[str, tuple[float, float]]:
    """{node id: (x, y)} of each node's top-left corner, given each node's (width, height) as
    it will be drawn: the columns of `columns`, each as wide as its widest node and `gap_x`
    from the next; within a column, nodes stacked in row order, `gap_y` apart. So no two
    nodes overlap, whatever their sizes."""
    pos = columns(graph)
    ncols = max((c for c, _ in pos.values()), default=-1) + 1
    widths = [0.0] * ncols
    for nid, (col, _) in pos.items():
        widths[col] = max(widths[col], sizes[nid][0])
    xs, x = [], 0.0
    for w in widths:
        xs.append(x)
        x += w + gap_x
    out: dict[str, tuple[float, float]] = {}
    tops = [0.0] * ncols
    for nid in sorted(pos, key=lambda n: (pos[n][0], pos[n][1])):
        col = pos[nid][0]
        out[nid] = (xs[col], tops[col])
        tops[col] += sizes[nid][1] + gap_y
    return out
