"""What scripts outside the node library (the benchmarks under bench/) may use of the style-transfer
internals, so they need not reach into the private modules: the tutorial's objective and its
terms, the pieces of the Adam step on torch and on TensorFlow, the recipe's run, and the loss
history's result.

The node registry imports this module with the others: it stays free of torch and TensorFlow,
and its names load from the private modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> (private module, its name there)
_EXPORTS = {
    # The TF tutorial's layers and weights.
    "TUTORIAL_STYLE_LAYERS": ("_losses", "TUTORIAL_STYLE_LAYERS"),
    "TUTORIAL_CONTENT_LAYERS": ("_losses", "TUTORIAL_CONTENT_LAYERS"),
    "TUTORIAL_STYLE_WEIGHT": ("_losses", "TUTORIAL_STYLE_WEIGHT"),
    "TUTORIAL_CONTENT_WEIGHT": ("_losses", "TUTORIAL_CONTENT_WEIGHT"),
    "TUTORIAL_TV_WEIGHT": ("_losses", "TUTORIAL_TV_WEIGHT"),
    # {layer: (out_channels, in_channels)} of a VGG conv stack.
    "conv_shapes": ("_vgg_net", "conv_shapes"),
    # IMAGE -> 1 x 3 x H x W float32 tensor (a copy the optimizers may write into).
    "image_tensor": ("_tensors", "image_tensor"),
    # The torch route: the objective, the Keras-style Adam update, the whole Adam run and its hooks.
    "Objective": ("_objective", "Objective"),
    "KerasAdam": ("_keras_adam", "KerasAdam"),
    "run_adam": ("_adam", "run_adam"),
    "Hooks": ("_run_record", "Hooks"),
    # The objective of a node's result, from its history output.
    "result_total": ("_run_record", "result_total"),
    # The TensorFlow route: its objective, its train step, the Keras Adam it steps with.
    "TFObjective": ("_tf_optimize", "TFObjective"),
    "TrainStep": ("_tf_optimize", "TrainStep"),
    "tf_keras_adam": ("_tf_optimize", "keras_adam"),
    # Forget the loaded VGG stacks: the next load reads the weights from disk, as a new process.
    "clear_model_cache": ("_vgg_models", "clear_model_cache"),
}

__all__ = [*_EXPORTS, "tutorial_terms", "vgg16_state"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        return getattr(importlib.import_module(f".{module}", __package__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def vgg16_state() -> dict:
    """The offline VGG16 conv stack's weights: {Keras layer name + '.weight' / '.bias': tensor}."""
    from ._vgg_weights import vgg16_weights

    state, _ = vgg16_weights(None)
    return state


def tutorial_terms(
    content: Any, style: Any, framework: str = "torch", channels_last: bool = True, device: str = "cpu"
) -> list:
    """The tutorial's three terms (style, content, TV) on the offline VGG16, as the StyleLoss,
    ContentLoss and TVLoss nodes build them with their defaults, for H x W x 3 images in 0..1.
    channels_last=False runs the torch VGG stack in the NCHW layout it used before."""
    from ._losses import (
        TUTORIAL_CONTENT_LAYERS,
        TUTORIAL_CONTENT_WEIGHT,
        TUTORIAL_STYLE_LAYERS,
        TUTORIAL_STYLE_WEIGHT,
        TUTORIAL_TV_WEIGHT,
        LossTerm,
        feature_term,
    )
    from ._vgg_models import load_source

    module, where = load_source("vgg16", None, device, framework=framework)
    if framework == "tensorflow":
        from ._tf_vgg import TF_SOURCES, TFVGG

        vgg = TFVGG(TF_SOURCES["vgg16"], module, where, device, "vgg16")
    else:
        from ._vgg_net import SOURCES, VGG

        if not channels_last:
            import copy

            import torch

            module = copy.deepcopy(module).to(memory_format=torch.contiguous_format)
            module.memory_format = torch.contiguous_format
        vgg = VGG(SOURCES["vgg16"], module, where, device, "vgg16")
    return [
        feature_term("style", vgg, style, ",".join(TUTORIAL_STYLE_LAYERS), TUTORIAL_STYLE_WEIGHT, device),
        feature_term("content", vgg, content, ",".join(TUTORIAL_CONTENT_LAYERS), TUTORIAL_CONTENT_WEIGHT, device),
        LossTerm("tv", TUTORIAL_TV_WEIGHT),
    ]
