"""A picture of a graph, for `nodeflow show`: boxes left to right by topological generation
(nodeflow.drawing.layout.columns), each with its id, type and literal inputs, wired port to port.
With node states from a run log, boxes are coloured by what happened to them.

The layout becomes a list of shapes once; Pillow draws them as PNG, or they are written as
SVG text. Pillow is imported only for PNG and for text metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from typing import Any

from nodeflow.drawing.layout import columns
from nodeflow.graph import Graph, as_link

TEXT, BODY = 12, 13  # font sizes: rows, header
ROW = 17  # row height
PAD = 8  # inside a box
COL_GAP, ROW_GAP, MARGIN = 70, 22, 24
MAX_LITERALS, MAX_VALUE = 8, 34

# Header colour per run state; "idle" is a graph drawn without a run log.
STATE_FILL = {
    "ran": "#a8dcb5",
    "cached": "#b5d3f3",
    "failed": "#f2a7a0",
    "cancelled": "#f5dd8c",
    "not run": "#e4e4e4",
    "idle": "#d8dee8",
}
LEGEND = {"ran": "ran", "cached": "from the cache", "failed": "failed", "cancelled": "cancelled", "not run": "not run"}


@dataclass
class Box:
    id: str
    type: str
    literals: list[str]
    inputs: list[str]  # linked inputs, in file order
    outputs: list[str]  # outputs other nodes take, in first-use order
    state: str = "idle"
    note: str = ""  # e.g. the error of a failed node
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0

    def port_rows_top(self) -> float:
        return self.y + ROW * 2 + PAD + ROW * len(self.literals) + (PAD if self.literals else 0)

    def input_at(self, name: str) -> tuple[float, float]:
        return self.x, self.port_rows_top() + ROW * (self.inputs.index(name) + 0.5)

    def output_at(self, name: str) -> tuple[float, float]:
        return self.x + self.w, self.port_rows_top() + ROW * (self.outputs.index(name) + 0.5)


@dataclass
class Shapes:
    """What to draw, in drawing order, in pixels at scale 1."""

    width: float
    height: float
    items: list[tuple] = field(default_factory=list)


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "\u2026"


def _boxes(graph: Graph, states: dict[str, dict]) -> dict[str, Box]:
    used: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    boxes = {}
    for nid, spec in graph.nodes.items():
        literals, inputs = [], []
        for name, value in spec.inputs.items():
            link = as_link(value)
            if link is None:
                literals.append(f"{name} = {_value_text(value)}")
            elif not isinstance(link, str) and link.node in graph.nodes:
                inputs.append(name)
                if link.output not in used[link.node]:
                    used[link.node].append(link.output)
        if spec.device:
            literals.append(f"device = {spec.device}")
        if len(literals) > MAX_LITERALS:
            literals = literals[: MAX_LITERALS - 1] + [f"\u2026 {len(literals) - MAX_LITERALS + 1} more"]
        boxes[nid] = Box(nid, spec.type, literals, inputs, used[nid])
    for nid, s in states.items():
        if nid in boxes:
            boxes[nid].state, boxes[nid].note = _state(s)
    if states:
        for box in boxes.values():
            if box.id not in states:
                box.state = "not run"
    return boxes


def _state(s: dict) -> tuple[str, str]:
    state, source = s.get("state", ""), s.get("source")
    if state == "cached" and source == "downstream":
        return "not run", "not needed"
    if state in ("ran", "cached", "failed", "cancelled"):
        note = s.get("error") or ""
        if state == "cached" and source:
            note = f"cached: {source}"
        elif state == "ran" and s.get("seconds") is not None:
            note = f"ran in {s['seconds']:.2f}s"
        return state, note
    return "not run", state


class _Metrics:
    def __init__(self) -> None:
        from PIL import ImageFont

        self.fonts = {size: ImageFont.load_default(size=size) for size in (TEXT, BODY)}

    def width(self, text: str, size: int = TEXT) -> float:
        return self.fonts[size].getlength(text)


def layout(graph: Graph, states: dict[str, dict] | None = None) -> Shapes:
    """The shapes of the picture: boxes placed by nodeflow.drawing.layout.columns, then the wires."""
    states = states or {}
    metrics = _Metrics()
    boxes = _boxes(graph, states)
    pos = columns(graph)
    for b in boxes.values():
        port_w = (
            max((metrics.width(n) for n in b.inputs), default=0)
            + max((metrics.width(n) for n in b.outputs), default=0)
            + 3 * PAD
        )
        b.w = (
            max(
                [metrics.width(b.id, BODY), metrics.width(b.type), metrics.width(b.note), port_w]
                + [metrics.width(t) for t in b.literals]
            )
            + 2 * PAD
        )
        b.h = (
            ROW * 2
            + PAD
            + ROW * len(b.literals)
            + (PAD if b.literals else 0)
            + ROW * max(len(b.inputs), len(b.outputs))
            + (ROW if b.note else 0)
            + PAD
        )
    ncols = max((c for c, _ in pos.values()), default=0) + 1
    col_w = [max((boxes[n].w for n, (c, _) in pos.items() if c == col), default=0) for col in range(ncols)]
    col_h = [sum(boxes[n].h + ROW_GAP for n, (c, _) in pos.items() if c == col) - ROW_GAP for col in range(ncols)]
    title_h = ROW * 2 if graph.title else 0
    height = max(col_h, default=0)
    x: float = MARGIN
    for col in range(ncols):
        y = MARGIN + title_h + (height - col_h[col]) / 2  # columns centred vertically
        for nid in sorted((n for n, (c, _) in pos.items() if c == col), key=lambda n: pos[n][1]):
            b = boxes[nid]
            b.x, b.y = x + (col_w[col] - b.w) / 2, y
            y += b.h + ROW_GAP
        x += col_w[col] + COL_GAP
    legend_h = ROW * 2 if states else 0
    shapes = Shapes(x - COL_GAP + MARGIN, MARGIN + title_h + height + legend_h + MARGIN)
    if graph.title:
        shapes.items.append(("text", MARGIN, MARGIN + ROW * 0.5, graph.title, BODY, "#222", "start", True))
    for nid, name, link in graph.links():  # wires first: boxes and port dots go over them
        shapes.items.append(("wire", boxes[link.node].output_at(link.output), boxes[nid].input_at(name)))
    for b in boxes.values():
        _box_shapes(b, shapes)
    if states:
        _legend(shapes, metrics, MARGIN + title_h + height + ROW)
    return shapes


def _box_shapes(b: Box, shapes: Shapes) -> None:
    add = shapes.items.append
    # Translucent boxes: a wire passing behind one stays visible, so it can't be mistaken
    # for a wire that ends there.
    add(("rect", b.x, b.y, b.w, b.h, "#ffffff", "#7a8594", 0.82))
    add(("rect", b.x, b.y, b.w, ROW * 2 + PAD / 2, STATE_FILL[b.state], "#7a8594", 0.9))
    add(("text", b.x + PAD, b.y + ROW * 0.75, b.id, BODY, "#111", "start", True))
    add(("text", b.x + PAD, b.y + ROW * 1.7, b.type, TEXT, "#333", "start", False))
    y = b.y + ROW * 2 + PAD
    for text in b.literals:
        add(("text", b.x + PAD, y + ROW / 2, text, TEXT, "#555", "start", False))
        y += ROW
    for name in b.inputs:
        px, py = b.input_at(name)
        add(("dot", px, py))
        add(("text", px + PAD, py, name, TEXT, "#222", "start", False))
    for name in b.outputs:
        px, py = b.output_at(name)
        add(("dot", px, py))
        add(("text", px - PAD, py, name, TEXT, "#222", "end", False))
    if b.note:
        add(
            (
                "text",
                b.x + PAD,
                b.y + b.h - PAD - ROW / 2,
                b.note,
                TEXT,
                "#a01818" if b.state == "failed" else "#555",
                "start",
                False,
            )
        )


def _legend(shapes: Shapes, metrics: _Metrics, y: float) -> None:
    x: float = MARGIN
    for state, label in LEGEND.items():
        shapes.items.append(("rect", x, y, 14, 14, STATE_FILL[state], "#7a8594", 1.0))
        shapes.items.append(("text", x + 20, y + 7, label, TEXT, "#222", "start", False))
        x += 20 + metrics.width(label) + 24


def _curve(a: tuple[float, float], b: tuple[float, float], n: int = 24) -> list[tuple[float, float]]:
    """A cubic Bezier leaving `a` to the right and entering `b` from the left."""
    bend = max(40.0, abs(b[0] - a[0]) / 2)
    c1, c2 = (a[0] + bend, a[1]), (b[0] - bend, b[1])
    pts = []
    for i in range(n + 1):
        t = i / n
        u = 1 - t
        pts.append(
            (
                u**3 * a[0] + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0] + t**3 * b[0],
                u**3 * a[1] + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1] + t**3 * b[1],
            )
        )
    return pts


WIRE = "#4a6fa5"


def to_svg(shapes: Shapes) -> str:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{shapes.width:.0f}" height="{shapes.height:.0f}" '
        f'viewBox="0 0 {shapes.width:.0f} {shapes.height:.0f}" font-family="Helvetica, Arial, sans-serif">',
        '<rect width="100%" height="100%" fill="#fafafa"/>',
    ]
    for item in shapes.items:
        kind = item[0]
        if kind == "rect":
            _, x, y, w, h, fill, stroke, opacity = item
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="4" '
                f'fill="{fill}" fill-opacity="{opacity}" stroke="{stroke}"/>'
            )
        elif kind == "text":
            _, x, y, text, size, colour, anchor, bold = item
            weight = ' font-weight="bold"' if bold else ""
            out.append(
                f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{colour}" '
                f'text-anchor="{anchor}" dominant-baseline="central"{weight}>{escape(text)}</text>'
            )
        elif kind == "dot":
            out.append(f'<circle cx="{item[1]:.1f}" cy="{item[2]:.1f}" r="4" fill="{WIRE}" stroke="#fff"/>')
        elif kind == "wire":
            (ax, ay), (bx, by) = item[1], item[2]
            bend = max(40.0, abs(bx - ax) / 2)
            out.append(
                f'<path d="M{ax:.1f},{ay:.1f} C{ax + bend:.1f},{ay:.1f} {bx - bend:.1f},{by:.1f} '
                f'{bx:.1f},{by:.1f}" fill="none" stroke="{WIRE}" stroke-width="1.6" opacity="0.8"/>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_png(shapes: Shapes, scale: float = 2.0) -> bytes:
    """PNG bytes, drawn at `scale` for sharp text."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    s = scale
    size = (int(shapes.width * s), int(shapes.height * s))
    img = Image.new("RGBA", size, "#fafafa")
    top = Image.new("RGBA", size, (0, 0, 0, 0))  # boxes and text, composited over the wires
    wires, draw = ImageDraw.Draw(img), ImageDraw.Draw(top)
    fonts: dict[int, Any] = {}

    def font(size: int):
        if size not in fonts:
            fonts[size] = ImageFont.load_default(size=round(size * s))
        return fonts[size]

    for item in shapes.items:
        kind = item[0]
        if kind == "rect":
            _, x, y, w, h, fill, stroke, opacity = item
            draw.rounded_rectangle(
                [x * s, y * s, (x + w) * s, (y + h) * s],
                radius=4 * s,
                fill=fill + f"{round(opacity * 255):02x}",
                outline=stroke,
                width=max(1, round(s)),
            )
        elif kind == "text":
            _, x, y, text, size, colour, anchor, bold = item
            draw.text(
                (x * s, y * s),
                text,
                fill=colour,
                font=font(size),
                anchor="lm" if anchor == "start" else "rm",
                stroke_width=round(0.35 * s) if bold else 0,
                stroke_fill=colour,
            )
        elif kind == "dot":
            r = 4 * s
            draw.ellipse(
                [item[1] * s - r, item[2] * s - r, item[1] * s + r, item[2] * s + r], fill=WIRE, outline="#ffffff"
            )
        elif kind == "wire":
            wires.line(
                [(px * s, py * s) for px, py in _curve(item[1], item[2])],
                fill=WIRE,
                width=max(1, round(1.6 * s)),
                joint="curve",
            )
    buf = io.BytesIO()
    Image.alpha_composite(img, top).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def render(graph: Graph, fmt: str, states: dict[str, dict] | None = None) -> bytes:
    """The picture as PNG or SVG bytes."""
    shapes = layout(graph, states)
    return to_png(shapes) if fmt == "png" else to_svg(shapes).encode("utf-8")
