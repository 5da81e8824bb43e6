"""A template's thumbnail: its nodes as boxes in nodeflow.drawing.layout's columns, wires between them."""

from __future__ import annotations

import html
from typing import Any

from nodeflow.graph import parse_graph

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 120, 36, 40, 14, 12


def graph_svg(graph: dict[str, Any]) -> str:
    from nodeflow.drawing.layout import columns, upstream

    model = parse_graph(graph)
    pos = columns(model)
    xy = {nid: (PAD + c * (BOX_W + GAP_X), PAD + r * (BOX_H + GAP_Y)) for nid, (c, r) in pos.items()}
    width = max(x for x, _ in xy.values()) + BOX_W + PAD
    height = max(y for _, y in xy.values()) + BOX_H + PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}"><rect width="100%" height="100%" fill="#202020"/>'
    ]
    for nid, ups in upstream(model).items():
        x2, y2 = xy[nid]
        for u in ups:
            x1, y1 = xy[u]
            parts.append(
                f'<path d="M{x1 + BOX_W},{y1 + BOX_H / 2} C{x1 + BOX_W + GAP_X / 2},{y1 + BOX_H / 2} '
                f'{x2 - GAP_X / 2},{y2 + BOX_H / 2} {x2},{y2 + BOX_H / 2}" stroke="#8a8" fill="none"/>'
            )
    for nid, (x, y) in xy.items():
        label = html.escape(model.nodes[nid].type)
        parts.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#353535" stroke="#666"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + BOX_H / 2 + 4}" font-family="sans-serif" font-size="12" '
            f'fill="#ddd" text-anchor="middle">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
