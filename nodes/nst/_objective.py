"""The objective an optimizer minimizes: the sum of its loss terms, with one VGG forward
per evaluation (per extractor), as deep as the deepest layer any term needs."""

from __future__ import annotations

from typing import Any

from ._losses import LossTerm, term_names, total_variation


class Objective:
    """Sum of loss terms with one VGG forward per evaluation (per extractor)."""

    def __init__(
        self,
        terms: list[LossTerm],
        size: tuple[int, int],
        device: str,
        tv_smoothing: float = 0.0,
        precision: str = "float32",
        tv_in_gradient: bool = True,
    ):
        self.terms = terms
        self.tv_in_gradient = tv_in_gradient
        self.device = device
        self.tv_smoothing = tv_smoothing
        self.precision = precision
        self.names = term_names(terms)
        self.targets = [t.targets(size, device) if t.kind != "tv" else {} for t in terms]
        # Per extractor: (the VGG, the layers whose features some term needs, those whose Gram)
        self.layers: dict[int, tuple[Any, set, set]] = {}
        for t in terms:
            if t.vgg is not None:
                vgg = t.vgg.to(device)
                _, layers, grams = self.layers.setdefault(id(t.vgg), (vgg, set(), set()))
                (grams if t.kind == "style" else layers).update(t.layers)

    def __call__(self, image) -> tuple[Any, dict[str, float]]:
        """(total to differentiate, {term name: exact value}) for a 1 x 3 x H x W image in 0..1.
        With tv_smoothing, TV terms are differentiated in their smooth form but reported exactly;
        without tv_in_gradient (a proximal step handles them), they are only reported."""
        import torch

        # bfloat16 runs the convolutions in bfloat16 (about twice as fast on CPUs with
        # AVX512-BF16 and on GPUs); Gram matrices and losses are computed in float32.
        feats = {
            vid: vgg.features(image, layers, grams, self.precision) for vid, (vgg, layers, grams) in self.layers.items()
        }
        parts, report = [], {}
        for name, t, tg in zip(self.names, self.terms, self.targets, strict=False):
            if t.kind == "tv" and (self.tv_smoothing > 0 or not self.tv_in_gradient):
                if self.tv_in_gradient:
                    parts.append(t.weight * total_variation(image, self.tv_smoothing))
                with torch.no_grad():
                    report[name] = float(t.value({}, image, {}))
            else:
                parts.append(t.value(feats.get(id(t.vgg), {}), image, tg))
                report[name] = float(parts[-1].detach())
        # TV terms alone under a proximal step: nothing to differentiate, a zero gradient.
        return (sum(parts) if parts else image.sum() * 0), report
