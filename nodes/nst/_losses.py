"""Loss terms of the TensorFlow NST tutorial's objective (the torch side; _tf_losses.py
holds the TensorFlow side of the same formulas).

Gram matrices divided by H*W, the mean squared error of each layer averaged over the
layers, and TV as summed absolute differences. A term (the value of a LOSS port) is
bound to one VGG extractor and holds its own targets, computed once per image size.
torch is imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodeflow.node import InputError

from ._tensors import image_tensor, resize_tensor
from ._vgg_net import check_layers, gram_key, layer_names
from ._vgg_ops import gram_tap

# The TF tutorial's layers and weights.
TUTORIAL_STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]

TUTORIAL_CONTENT_LAYERS = ["block5_conv2"]

TUTORIAL_STYLE_WEIGHT = 1e-2

TUTORIAL_CONTENT_WEIGHT = 1e4

TUTORIAL_TV_WEIGHT = 30.0


def gram(features):
    """1 x C x H x W -> float32 C x C Gram matrix divided by H*W (the number of locations).
    Channels-last features (the VGG stack's layout) become a locations x channels matrix
    without a copy; the gradient comes back in one matmul, in the features' own dtype."""
    return gram_tap(features)[1]


def differences(image):
    """(horizontal, vertical) differences between neighbouring pixels: what TV sums."""
    return image[..., :, 1:] - image[..., :, :-1], image[..., 1:, :] - image[..., :-1, :]


def total_variation(image, smoothing: float = 0.0):
    """tf.image.total_variation: summed absolute differences between neighbours.
    smoothing > 0 gives the Charbonnier surrogate sqrt(d^2 + s^2) - s, which is smooth
    at d = 0 (what L-BFGS needs) and never more than s away from |d|."""
    dx, dy = differences(image)
    if smoothing > 0:
        s2 = smoothing * smoothing
        return ((dx * dx + s2).sqrt() - smoothing).sum() + ((dy * dy + s2).sqrt() - smoothing).sum()
    return dx.abs().sum() + dy.abs().sum()


@dataclass
class LossTerm:
    """One weighted loss term. kind: style | content | tv."""

    kind: str
    weight: float
    layers: list[str] = field(default_factory=list)
    vgg: Any = None  # _vgg_net.VGG for style/content
    image: Any = None  # the style/content image (IMAGE) the targets come from
    resize_to_input: bool = False  # content: targets follow the optimized image's size
    _targets: dict = field(default_factory=dict, repr=False)

    @property
    def framework(self) -> str | None:
        """The framework of the extractor the term is bound to; None for TV (either)."""
        return self.vgg.framework if self.vgg is not None else None

    def targets(self, size: tuple[int, int], device: str) -> dict:
        """The target of each layer, computed once per (size, device)."""
        key = (tuple(size) if self.resize_to_input else None, device)
        if key not in self._targets and self.framework == "tensorflow":
            from ._tf_losses import tf_targets

            self._targets[key] = tf_targets(self, size, device)
        if key not in self._targets:
            import torch

            x = image_tensor(self.image, device)
            if self.resize_to_input:
                x = resize_tensor(x, size)
            with torch.inference_mode():
                feats = self.vgg.to(device).features(x, self.layers)
                t = {n: (gram(f) if self.kind == "style" else f).clone() for n, f in feats.items()}
            self._targets[key] = t
        return self._targets[key]

    def value(self, feats: dict, image, targets: dict):
        """The weighted term, given the VGG features of the image being optimized."""
        if self.kind == "tv":
            return self.weight * total_variation(image)
        per_layer = []
        for name in self.layers:
            if self.kind == "style":  # the Gram the VGG pass took, if it took it
                f = feats[gram_key(name)] if gram_key(name) in feats else gram(feats[name])
            else:
                f = feats[name].float()
            per_layer.append(((f - targets[name]) ** 2).mean())
        return self.weight * sum(per_layer) / len(per_layer)

    def describe(self) -> str:
        if self.kind == "tv":
            return f"tv x {self.weight:g}"
        return f"{self.kind} x {self.weight:g} on {', '.join(self.layers)} ({self.vgg.info})"

    # Terms travel between devices with the VGG they are bound to.
    def to(self, device: str) -> LossTerm:
        return self


def term_names(terms: list[LossTerm]) -> list[str]:
    """style, content, tv; numbered when a kind repeats (style_1, style_2)."""
    counts: dict[str, int] = {}
    for t in terms:
        counts[t.kind] = counts.get(t.kind, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for t in terms:
        seen[t.kind] = seen.get(t.kind, 0) + 1
        names.append(t.kind if counts[t.kind] == 1 else f"{t.kind}_{seen[t.kind]}")
    return names


def parse_layers(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def feature_term(kind: str, vgg: Any, image: Any, layers: str, weight: float, device: str) -> LossTerm:
    """A style or content term; its targets at the image's own size are computed now."""
    names = parse_layers(layers)
    if not names:
        raise InputError("layers", "name at least one layer, e.g. block5_conv2")
    unknown = check_layers(vgg.arch, names)
    if unknown:
        raise InputError(
            "layers", f"{vgg.arch} has no layer {', '.join(unknown)} (it has {', '.join(layer_names(vgg.arch))})"
        )
    term = LossTerm(kind, weight, names, vgg, image, resize_to_input=(kind == "content"))
    term.targets(image.shape[:2], device)
    return term
