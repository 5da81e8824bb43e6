"""HighPass: what is left of an image after its smooth part is taken away."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE


def pixel_differences(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The TF style-transfer tutorial's high_pass_x_y: neighbour differences along x and y."""
    return image[:, 1:, :] - image[:, :-1, :], image[1:, :, :] - image[:-1, :, :]


class HighPass(Node):
    """High-pass views, shown around mid-grey as 0.5 + gain * detail.
    diff: the TF NST tutorial's high_pass_x_y (pixel differences along x, y, or both summed);
    gaussian: the image minus its Gaussian blur."""

    version = "1"
    category = "image/edges"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="image to filter")
        mode: Literal["diff", "gaussian"] = Input("diff", description="pixel differences, or minus a Gaussian blur")
        direction: Literal["x", "y", "both"] = Input("both", description="diff mode: which differences to show")
        sigma: float = Input(2.0, gt=0, le=100, description="gaussian mode: blur radius in pixels")
        gain: float = Input(2.0, gt=0, le=100, description="contrast of the view (the tutorial uses 2)")

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "high-pass view, 0.5 = no detail")

    def run(self, image: Any, mode: str, direction: str, sigma: float, gain: float) -> dict:
        if mode == "gaussian":
            from ._filters import gaussian_blur

            detail = image - gaussian_blur(image, sigma)
        else:
            dx, dy = pixel_differences(image)
            detail = np.zeros_like(image)
            # Differences are one pixel shorter; pad the last row/column with zeros.
            if direction in ("x", "both"):
                detail[:, :-1] += dx
            if direction in ("y", "both"):
                detail[:-1, :] += dy
        return {"image": np.clip(0.5 + gain * detail, 0, 1).astype(np.float32)}
