"""StyleLoss: Gram-matrix loss against a style image."""

from __future__ import annotations

from typing import Any

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

from ._losses import TUTORIAL_STYLE_LAYERS, TUTORIAL_STYLE_WEIGHT, feature_term
from ._ports import LOSS, VGG_PORT


class StyleLoss(Node):
    """Style term: on each layer, the mean squared error between Gram matrices (divided by
    H*W), averaged over the layers, times `weight`. The style targets are computed once,
    from the style image at its own size."""

    version = "1"
    category = "style transfer"
    frameworks = ("torch", "tensorflow")  # its extractor's
    devices = ("cuda", "mps", "cpu")

    class Inputs(NodeInputs):
        vgg: Any = Input(port=VGG_PORT, description="feature extractor")
        style: Any = Input(port=IMAGE, description="the style image")
        layers: str = Input(
            ",".join(TUTORIAL_STYLE_LAYERS), min_length=1, description="comma-separated Keras layer names"
        )
        weight: float = Input(TUTORIAL_STYLE_WEIGHT, ge=0, description="weight of the term")

    class Outputs(NodeOutputs):
        loss: Any = Output(LOSS, "the style term")

    def run(self, vgg: Any, style: Any, layers: str, weight: float) -> dict:
        return {"loss": feature_term("style", vgg, style, layers, weight, self.ctx.device)}
