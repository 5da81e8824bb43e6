"""Adam's update as Keras applies it, on a pixel tensor in place. torch is imported inside
functions only."""

from __future__ import annotations

import math
from collections.abc import Callable


class KerasAdam:
    """Adam exactly as Keras applies it (epsilon added to the uncorrected sqrt(v)),
    the update the TF tutorial's numbers come from."""

    def __init__(self, param, lr: float, beta1: float, beta2: float, eps: float):
        import torch

        self.p, self.lr, self.b1, self.b2, self.eps = param, lr, beta1, beta2, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    def step(self, grad, lr: float | None = None, prox: Callable | None = None) -> None:
        """One update; `prox(y, scale)` then maps the stepped pixels y, given each pixel's
        step size (Adam's metric), to the proximal point of the terms left out of `grad`."""
        self.t += 1
        lr = self.lr if lr is None else lr
        alpha = lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        self.m.lerp_(grad, 1 - self.b1)
        self.v.lerp_(grad * grad, 1 - self.b2)
        denom = self.v.sqrt().add_(self.eps)
        self.p.data.addcdiv_(self.m, denom, value=-alpha)
        if prox is not None:
            self.p.data.copy_(prox(self.p.data, alpha / denom))

    def resize(self, size: tuple[int, int]) -> None:
        """Carry the moments across a coarse-to-fine upsampling."""
        import torch.nn.functional as F

        self.m = F.interpolate(self.m, size=size, mode="bilinear", align_corners=False)
        self.v = F.interpolate(self.v, size=size, mode="bilinear", align_corners=False).clamp_min(0)
