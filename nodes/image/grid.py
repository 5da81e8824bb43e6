"""Grid: several images side by side, each with a label, scaled to one height."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import create_model

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

SLOTS = 8
LABEL_HEIGHT = 28

GridInputs = create_model(
    "GridInputs",
    __base__=NodeInputs,
    **{f"image{i}": (Any, Input(None, port=IMAGE, description=f"image in cell {i}")) for i in range(1, SLOTS + 1)},
    **{f"label{i}": (str, Input("", description=f"caption of cell {i}")) for i in range(1, SLOTS + 1)},
    columns=(int, Input(0, ge=0, le=SLOTS, description="cells per row; 0 puts them all in one row")),
    cell_height=(int, Input(256, ge=16, le=4096, description="every image is scaled to this height")),
    padding=(int, Input(8, ge=0, le=256, description="gap between cells, in pixels")),
    background=(Literal["white", "black"], Input("white", description="canvas colour")),
)


class Grid(Node):
    """Lay out up to 8 images in a labelled grid (empty slots are skipped)."""

    version = "1"
    category = "image/compose"
    Inputs = GridInputs

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "the grid")

    def run(self, columns: int, cell_height: int, padding: int, background: str, **slots: Any) -> dict:
        from PIL import Image, ImageDraw, ImageFont

        from nodes._shared.pixels import from_pil, resize, to_rgb, to_uint8

        cells = [
            (slots[f"image{i}"], slots[f"label{i}"]) for i in range(1, SLOTS + 1) if slots[f"image{i}"] is not None
        ]
        if not cells:
            from nodeflow.node import InputError

            raise InputError("image1", "the grid needs at least one image")
        scaled = [
            to_rgb(resize(img, max(1, round(img.shape[1] * cell_height / img.shape[0])), cell_height))
            for img, _ in cells
        ]
        cols = columns or len(cells)
        rows = math.ceil(len(cells) / cols)
        col_w = [max(s.shape[1] for s in scaled[c::cols]) for c in range(cols)]
        labelled = any(label for _, label in cells)
        cell_h = cell_height + (LABEL_HEIGHT if labelled else 0)
        width = sum(col_w) + padding * (cols + 1)
        height = rows * cell_h + padding * (rows + 1)
        fg, bg = ((0, 0, 0), (255, 255, 255)) if background == "white" else ((255, 255, 255), (0, 0, 0))
        canvas = Image.new("RGB", (width, height), bg)
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default(size=18)
        for n, (img, (_, label)) in enumerate(zip(scaled, cells, strict=False)):
            r, c = divmod(n, cols)
            x = padding + sum(col_w[:c]) + padding * c
            y = padding + r * (cell_h + padding)
            canvas.paste(Image.fromarray(to_uint8(img)), (x, y))
            if label:
                tw = draw.textlength(label, font=font)
                draw.text((x + (img.shape[1] - tw) / 2, y + cell_height + 4), label, fill=fg, font=font)
        return {"image": from_pil(canvas)}
