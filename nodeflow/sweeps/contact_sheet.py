"""A sweep's contact sheet: every variation's image in one labelled grid, like
ComfyUI's XY plots. The last swept input runs along the columns; the others fold
into the rows (one label line per input). Plain Pillow: the engine imports no node.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from nodeflow.cache import atomic_write
from nodeflow.sweeps.sweep import Axis, variations

CELL_HEIGHT = 256
PAD = 8
FONT_SIZE = 16
LINE = 22
METADATA_KEY = "nodeflow:contact_sheet"
MAX_NUMBERED = 9999


def sheet_name(output_name: str) -> str:
    """edges.png -> edges__sweep.png (next to the variations' own files)."""
    p = Path(output_name)
    return str(p.with_name(f"{p.stem}__sweep.png"))


def _label(axes: list[Axis], axis: Axis, value: Any) -> str:
    """'strength = 0.5'; the node id too where two swept inputs share a name."""
    name = axis.input if [a.input for a in axes].count(axis.input) == 1 else axis.target
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{name} = {text}"


def _open(path: Path | None, height: int):
    from PIL import Image

    if path is None:
        return None
    try:
        with Image.open(path) as opened:
            im = opened.convert("RGB")
    except OSError:
        return None
    width = max(1, round(im.width * height / im.height))
    return im.resize((width, height), Image.Resampling.LANCZOS)


def draw(axes: list[Axis], files: list[Path | None]) -> tuple[Any, dict]:
    """The sheet (a PIL image) and its layout: row and column labels and each cell's box.
    `files` holds one image per variation, in variations(axes) order (None: none made)."""
    from PIL import Image, ImageDraw, ImageFont

    col_axis, row_axes = axes[-1], axes[:-1]
    n_cols = len(col_axis.values)
    n_rows = len(files) // n_cols
    col_labels = [_label(axes, col_axis, v) for v in col_axis.values]
    row_labels = [[_label(axes, a, var.values[a.target]) for a in row_axes] for var in variations(axes)[::n_cols]]
    heights = []
    for f in files:
        if f is None:
            continue
        try:
            with Image.open(f) as im:
                heights.append(im.height)
        except (OSError, TypeError, AttributeError):  # not an image
            pass
    cell_h = min(CELL_HEIGHT, max(heights, default=CELL_HEIGHT))
    images = [_open(f, cell_h) for f in files]
    col_w = [max([im.width for im in images[c::n_cols] if im is not None] or [cell_h]) for c in range(n_cols)]

    font = ImageFont.load_default(size=FONT_SIZE)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    col_w = [max(w, int(scratch.textlength(t, font=font)) + PAD) for w, t in zip(col_w, col_labels, strict=False)]
    label_w = max([int(scratch.textlength(line, font=font)) for lines in row_labels for line in lines] or [0])
    left = label_w + 2 * PAD if row_axes else PAD
    row_h = max(cell_h, LINE * len(row_axes))
    width = left + sum(col_w) + PAD * n_cols
    height = LINE + PAD + n_rows * (row_h + PAD)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    pen = ImageDraw.Draw(canvas)
    cells = []
    x0 = [left + sum(col_w[:c]) + PAD * c for c in range(n_cols)]
    for c, text in enumerate(col_labels):
        pen.text(
            (x0[c] + (col_w[c] - scratch.textlength(text, font=font)) / 2, PAD // 2), text, fill=(0, 0, 0), font=font
        )
    for r in range(n_rows):
        y = LINE + PAD + r * (row_h + PAD)
        for i, line in enumerate(row_labels[r]):
            pen.text((PAD, y + (row_h - LINE * len(row_labels[r])) / 2 + i * LINE), line, fill=(0, 0, 0), font=font)
        for c in range(n_cols):
            k = r * n_cols + c
            im = images[k]
            if im is None:
                pen.rectangle((x0[c], y, x0[c] + col_w[c] - 1, y + cell_h - 1), outline=(200, 0, 0))
                pen.text((x0[c] + PAD, y + PAD), "no image", fill=(200, 0, 0), font=font)
                box = None
            else:
                box = [x0[c] + (col_w[c] - im.width) // 2, y, im.width, im.height]
                canvas.paste(im, (box[0], box[1]))
            cells.append(
                {"row": r, "column": c, "box": box, "file": Path(str(files[k])).name if files[k] is not None else None}
            )
    layout = {
        "axes": [{"target": a.target, "values": list(a.values)} for a in axes],
        "rows": [", ".join(lines) for lines in row_labels],
        "columns": col_labels,
        "cells": cells,
    }
    return canvas, layout


def save(axes: list[Axis], files: list[Path | None], target: Path) -> tuple[Path, dict]:
    """Draw the sheet and write it (write_new), its layout in the PNG text."""
    from PIL.PngImagePlugin import PngInfo

    canvas, layout = draw(axes, files)
    info = PngInfo()
    info.add_itxt(METADATA_KEY, json.dumps(layout))
    buf = io.BytesIO()
    canvas.save(buf, "PNG", pnginfo=info)
    return write_new(target, buf.getvalue()), layout


def write_new(target: Path, data: bytes) -> Path:
    """Write data atomically at target, or at the next free numbered name (name_0001.png)
    if another file holds that name; a file that holds these bytes already is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for i in range(MAX_NUMBERED + 1):
        cand = target if i == 0 else target.with_name(f"{target.stem}_{i:04d}{target.suffix}")
        if not cand.exists():
            atomic_write(cand, data)
            return cand
        if cand.read_bytes() == data:
            return cand
    raise OSError(f"{MAX_NUMBERED} numbered files named like {target.name} exist")


def sheets_for(axes: list[Axis], outputs: list[dict[str, list[Path]]], out_dir: Path) -> list[dict]:
    """One sheet per output node that wrote an image in some variation. outputs[i] maps
    each output node of variation i to the files it wrote. Returns [{node, path, layout}]."""
    nodes = []
    for per_var in outputs:
        for nid in per_var:
            if nid not in nodes:
                nodes.append(nid)
    sheets = []
    tags = [v.tag for v in variations(axes)]
    for nid in nodes:
        files = [_first_image(per_var.get(nid, [])) for per_var in outputs]
        first = next((i for i, f in enumerate(files) if f is not None), None)
        if first is None:
            continue
        untagged = Path(str(files[first])).name.replace(tags[first], "")
        path, layout = save(axes, files, out_dir / sheet_name(untagged))
        sheets.append({"node": nid, "path": path, "layout": layout})
    return sheets


def _first_image(paths: list[Path]) -> Path | None:
    for p in paths:
        if Path(p).suffix.lower() in (".png", ".jpg", ".jpeg"):
            return Path(p)
    return None
