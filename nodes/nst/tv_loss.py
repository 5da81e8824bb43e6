"""TVLoss: total variation of the optimized image."""

from __future__ import annotations

from typing import Any

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output

from ._losses import TUTORIAL_TV_WEIGHT, LossTerm
from ._ports import LOSS


class TVLoss(Node):
    """Total-variation term: `weight` times the summed absolute differences between
    neighbouring pixels (tf.image.total_variation), on the 0..1 image."""

    version = "1"
    category = "style transfer"

    class Inputs(NodeInputs):
        weight: float = Input(TUTORIAL_TV_WEIGHT, ge=0, description="weight of the term")

    class Outputs(NodeOutputs):
        loss: Any = Output(LOSS, "the TV term")

    def run(self, weight: float) -> dict:
        return {"loss": LossTerm("tv", weight)}
