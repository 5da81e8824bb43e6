"""A slow node for the server tests, loaded by the test server process through
$NODEFLOW_PLUGINS (the operator's way to add local node modules). Not part of
the built-in library."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE


class SlowInvert(Node):
    """Invert an image slowly: `steps` steps of `delay` seconds, with progress,
    a preview each step, and a cancellation check each step."""
    version = "1"
    category = "test"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="image to invert")
        steps: int = Input(10, ge=1, le=10000)
        delay: float = Input(0.1, ge=0, le=10)

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "inverted image")

    def run(self, image: Any, steps: int, delay: float) -> dict:
        for i in range(steps):
            self.ctx.check_cancelled()
            time.sleep(delay)
            self.ctx.progress(i + 1, steps)
            self.ctx.preview(image)
        return {"image": np.ascontiguousarray(1.0 - image, dtype=np.float32)}
