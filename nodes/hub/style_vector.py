"""StyleVector: encode a style image once, for HubStylize's onnx route."""

from __future__ import annotations

from typing import Any

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

from ._onnx import PREDICT, model_id
from ._style import STYLE_VECTOR, predict_style_vector


class StyleVector(Node):
    """Magenta's style predictor: a style image -> its 100-number style vector. As its own node
    the vector is a cached value: changing only the content never re-encodes the style, even
    across runs. Feed it to HubStylize's `style_vector` (model_source onnx)."""

    version = "1"
    category = "style"
    frameworks = ("onnxruntime",)
    devices = ("cuda", "cpu")

    class Inputs(NodeInputs):
        style: Any = Input(port=IMAGE, description="style image")
        style_size: int = Input(256, ge=64, le=1024, description="centre-cropped and scaled to this square")
        style_pool: bool = Input(True, description="3x3 average pool first (as the TF Hub colab)")

    class Outputs(NodeOutputs):
        vector: Any = Output(STYLE_VECTOR, "float32 style vector (100 numbers)")

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        return model_id(PREDICT)

    def run(self, style: Any, style_size: int, style_pool: bool) -> dict:
        if min(style.shape[:2]) < 8:
            raise InputError("style", f"the style image is {style.shape[1]}x{style.shape[0]}: too small")
        return {"vector": predict_style_vector(style, style_size, style_pool, self.ctx.device)}
