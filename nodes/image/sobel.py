"""Sobel: x and y gradients and their magnitude, as viewable images."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

# The largest response of a 3x3 Sobel kernel to values in 0..1 is 4.
SOBEL_MAX = 4.0


class Sobel(Node):
    """Sobel gradients. `x` and `y` are shown around mid-grey (0.5 = no change);
    `magnitude` is sqrt(x^2 + y^2), black where the image is flat."""

    version = "1"
    category = "image/edges"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="image to differentiate")
        channels: Literal["gray", "per_channel"] = Input("gray", description="on luma, or on each channel")
        normalize: Literal["fixed", "max"] = Input(
            "max", description="fixed: divide by the largest possible response; max: stretch so the strongest edge is 1"
        )

    class Outputs(NodeOutputs):
        magnitude: Any = Output(IMAGE, "gradient magnitude, 0..1")
        x: Any = Output(IMAGE, "horizontal gradient, 0.5 = flat")
        y: Any = Output(IMAGE, "vertical gradient, 0.5 = flat")

    def run(self, image: Any, channels: str, normalize: str) -> dict:
        from ._filters import correlate_separable, grayscale

        src = grayscale(image) if channels == "gray" else image[:, :, :3]
        smooth, diff = np.array([1, 2, 1], np.float32), np.array([-1, 0, 1], np.float32)
        gx = correlate_separable(src, diff, smooth)
        gy = correlate_separable(src, smooth, diff)
        mag = np.sqrt(gx * gx + gy * gy)
        if normalize == "max":
            scale = float(mag.max()) or 1.0
        else:
            scale = SOBEL_MAX * np.sqrt(2.0)
        return {
            "magnitude": np.clip(mag / scale, 0, 1).astype(np.float32),
            "x": np.clip(0.5 + gx / (2 * scale), 0, 1).astype(np.float32),
            "y": np.clip(0.5 + gy / (2 * scale), 0, 1).astype(np.float32),
        }
