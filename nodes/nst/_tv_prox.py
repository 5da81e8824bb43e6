"""The proximal step of the TV term: the exact minimizer of a weighted squared distance plus
total variation inside the [0, 1] box, by Beck and Teboulle's fast gradient projection on
the dual (2009), in a diagonal metric (per-pixel step sizes; _optimizers.evened says which).

At 512 px the tutorial's TV term is two thirds of the objective late in a run, and its
gradient, a sign per pixel, is what Adam makes slow progress on: it flattens a region one
pixel-sized nudge at a time. The proximal step flattens it at once, and costs no VGG pass.
torch is imported inside functions only.
"""
from __future__ import annotations

import math
from typing import Any

from ._losses import differences


def _adjoint(p, q):
    """D^T (p, q) for D x = (horizontal differences, vertical differences)."""
    import torch.nn.functional as F
    return (F.pad(p, (1, 0)) - F.pad(p, (0, 1))) + (F.pad(q, (0, 0, 1, 0)) - F.pad(q, (0, 0, 0, 1)))


class TVProx:
    """argmin over x in [0, 1] of  sum(d * (x - y)^2) / 2 + weight * TV(x),  TV as
    tf.image.total_variation (summed absolute differences, per channel).

    `scale` is 1/d per pixel (for an Adam step: its step size over sqrt(v) + epsilon).
    The dual variables persist between calls: successive steps are close, so a few
    iterations from the last answer suffice (bench/nst.py measures the route)."""

    def __init__(self, weight: float, iterations: int = 20):
        self.weight = weight
        self.iterations = iterations
        self.dual: tuple[Any, Any] | None = None
        self.shape: tuple[int, ...] = ()

    def __call__(self, y, scale):
        import torch
        if self.dual is None or self.shape != tuple(y.shape):   # a new stage's size: start over
            self.dual = tuple(torch.zeros_like(d) for d in differences(y))
            self.shape = tuple(y.shape)
        ws = self.weight * scale
        # The dual gradient's Lipschitz constant is 8 * weight^2 * max(scale); step 1/L.
        step = 1.0 / (8 * self.weight * float(scale.max()))
        p, q = self.dual
        rp, rq, t = p, q, 1.0
        for _ in range(self.iterations):
            dx, dy = differences((y - ws * _adjoint(rp, rq)).clamp_(0, 1))
            pn = (rp + step * dx).clamp_(-1, 1)
            qn = (rq + step * dy).clamp_(-1, 1)
            tn = (1 + math.sqrt(1 + 4 * t * t)) / 2
            rp = pn + (t - 1) / tn * (pn - p)
            rq = qn + (t - 1) / tn * (qn - q)
            p, q, t = pn, qn, tn
        self.dual = (p, q)
        return (y - ws * _adjoint(p, q)).clamp_(0, 1)
