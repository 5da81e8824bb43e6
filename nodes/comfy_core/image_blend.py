"""ImageBlend: mix two images with a blend mode."""

from __future__ import annotations

from typing import Any, Literal

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE


def _channels(a: Any, b: Any) -> tuple[Any, Any]:
    """Same channel count: grey becomes RGB, and RGB gains an opaque alpha beside RGBA."""
    import numpy as np

    def widen(x: Any, c: int) -> Any:
        if x.shape[2] == 1:
            x = np.repeat(x, 3, axis=2)
        if c == 4 and x.shape[2] == 3:
            x = np.concatenate([x, np.ones_like(x[:, :, :1])], axis=2)
        return x

    c = max(a.shape[2], b.shape[2], 3)
    return widen(a, c), widen(b, c)


def blend(a: Any, b: Any, mode: str) -> Any:
    import numpy as np

    if mode == "normal":
        return b
    if mode == "multiply":
        return a * b
    if mode == "screen":
        return 1 - (1 - a) * (1 - b)
    if mode == "overlay":
        return np.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))
    if mode == "soft_light":
        g = np.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, np.sqrt(np.clip(a, 0, None)))
        return np.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (g - a))
    if mode == "difference":
        return a - b
    raise ValueError(f"unknown blend mode {mode!r}")


class ImageBlend(Node):
    """ComfyUI's ImageBlend: image1 mixed with blend(image1, image2) by `blend_factor`
    (0: image1, 1: the blend), clamped to 0..1. image2 is first resized (bicubic, centre crop)
    to image1's size when they differ."""

    version = "1"
    category = "image/postprocessing"

    class Inputs(NodeInputs):
        image1: Any = Input(port=IMAGE, description="the base image")
        image2: Any = Input(port=IMAGE, description="the image blended onto it")
        blend_factor: float = Input(0.5, ge=0.0, le=1.0, description="0: image1 only, 1: the full blend")
        blend_mode: Literal["normal", "multiply", "screen", "overlay", "soft_light", "difference"] = Input(
            description="how the two images combine"
        )

    class Outputs(NodeOutputs):
        IMAGE: Any = Output(IMAGE, "the blended image")

    def run(self, image1: Any, image2: Any, blend_factor: float, blend_mode: str) -> dict:
        import numpy as np

        from nodes.comfy_core._images import scale

        a, b = _channels(image1, image2)
        if b.shape[:2] != a.shape[:2]:
            b = scale(b, a.shape[1], a.shape[0], "bicubic", "center")
        mixed = a * (1 - blend_factor) + blend(a, b, blend_mode) * blend_factor
        return {"IMAGE": np.ascontiguousarray(np.clip(mixed, 0.0, 1.0), dtype=np.float32)}
