"""ImageScale: resize to a width and height."""

from __future__ import annotations

from typing import Any, Literal

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

from ._images import MAX_RESOLUTION


class ImageScale(Node):
    """ComfyUI's ImageScale: resizes to width x height. A size of 0 keeps the aspect ratio
    from the other (both 0: unchanged); crop `center` first cuts the centre to the new aspect
    ratio. Resampling is Pillow's (float precision), so values may differ slightly from
    ComfyUI's torch interpolation."""

    version = "1"
    category = "image/upscaling"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="the image to resize")
        upscale_method: Literal["nearest-exact", "bilinear", "area", "bicubic", "lanczos"] = Input(
            description="resampling filter"
        )
        width: int = Input(512, ge=0, le=MAX_RESOLUTION, description="new width in pixels (0: from the height)")
        height: int = Input(512, ge=0, le=MAX_RESOLUTION, description="new height in pixels (0: from the width)")
        crop: Literal["disabled", "center"] = Input(description="cut the centre to the new aspect ratio first")

    class Outputs(NodeOutputs):
        IMAGE: Any = Output(IMAGE, "the resized image")

    def run(self, image: Any, upscale_method: str, width: int, height: int, crop: str) -> dict:
        from nodes.comfy_core._images import scale

        if width == 0 and height == 0:
            return {"IMAGE": image}
        h, w = image.shape[:2]
        if width == 0:
            width = max(1, round(w * height / h))
        elif height == 0:
            height = max(1, round(h * width / w))
        return {"IMAGE": scale(image, width, height, upscale_method, crop)}
