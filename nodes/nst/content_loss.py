"""ContentLoss: feature loss against a content image."""

from __future__ import annotations

from typing import Any

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

from ._losses import TUTORIAL_CONTENT_LAYERS, TUTORIAL_CONTENT_WEIGHT, feature_term
from ._ports import LOSS, VGG_PORT


class ContentLoss(Node):
    """Content term: on each layer, the mean squared error between VGG features, averaged
    over the layers, times `weight`. Targets are computed once per optimization size
    (a coarse-to-fine run compares against the content image at that size)."""

    version = "1"
    category = "style transfer"
    frameworks = ("torch", "tensorflow")  # its extractor's
    devices = ("cuda", "mps", "cpu")

    class Inputs(NodeInputs):
        vgg: Any = Input(port=VGG_PORT, description="feature extractor")
        content: Any = Input(port=IMAGE, description="the content image")
        layers: str = Input(
            ",".join(TUTORIAL_CONTENT_LAYERS), min_length=1, description="comma-separated Keras layer names"
        )
        weight: float = Input(TUTORIAL_CONTENT_WEIGHT, ge=0, description="weight of the term")

    class Outputs(NodeOutputs):
        loss: Any = Output(LOSS, "the content term")

    def run(self, vgg: Any, content: Any, layers: str, weight: float) -> dict:
        return {"loss": feature_term("content", vgg, content, layers, weight, self.ctx.device)}
