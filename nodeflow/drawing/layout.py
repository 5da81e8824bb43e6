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
