"""ImageScaleBy: resize by a factor."""

from __future__ import annotations

from typing import Any, Literal

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE


class ImageScaleBy(Node):
    """ComfyUI's ImageScaleBy: resizes both sides by `scale_by` (rounded to whole pixels)."""

    version = "1"
    category = "image/upscaling"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="the image to resize")
        upscale_method: Literal["nearest-exact", "bilinear", "area", "bicubic", "lanczos"] = Input(
            description="resampling filter"
        )
        scale_by: float = Input(1.0, ge=0.01, le=8.0, description="factor for both sides")

    class Outputs(NodeOutputs):
        IMAGE: Any = Output(IMAGE, "the resized image")

    def run(self, image: Any, upscale_method: str, scale_by: float) -> dict:
        from nodes.comfy_core._images import scale

        h, w = image.shape[:2]
        width, height = max(1, round(w * scale_by)), max(1, round(h * scale_by))
        return {"IMAGE": scale(image, width, height, upscale_method)}
