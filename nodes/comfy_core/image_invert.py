"""ImageInvert: 1 - image."""

from __future__ import annotations

from typing import Any

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE


class ImageInvert(Node):
    """ComfyUI's ImageInvert: every channel v becomes 1 - v."""

    version = "1"
    category = "image"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="the image to invert")

    class Outputs(NodeOutputs):
        IMAGE: Any = Output(IMAGE, "the inverted image")

    def run(self, image: Any) -> dict:
        import numpy as np

        return {"IMAGE": np.ascontiguousarray(1.0 - image, dtype=np.float32)}
