"""The proximal step of the TV term: the exact minimizer of a weighted squared distance plus
total variation inside the [0, 1] box, by Beck and Teboulle's fast gradient projection on
the dual (2009), in a diagonal metric (per-pixel step sizes; _optimizers.adams_share says which).

At 512 px the tutorial's TV term is two thirds of the objective late in a run, and its
gradient, a sign per pixel, is what Adam makes slow progress on: it flattens a region one
pixel-sized nudge at a time. The proximal step flattens it at once, and costs no VGG pass.
torch is imported inside functions only.
"""

from __future__ import annotations

import math
from typing import Any

from ._losses import differences


def _adjoint(p, q, out):
    """D^T (p, q) into `out`, for D x = (horizontal differences, vertical differences):
    written in place, three passes where padding took seven (the step's hot loop)."""
    import torch

    if not p.shape[-1]:  # a one-pixel-wide image has no horizontal pairs
        out.zero_()
    else:
        out[..., :, 0] = -p[..., :, 0]
        torch.sub(p[..., :, :-1], p[..., :, 1:], out=out[..., :, 1:-1])
        out[..., :, -1] = p[..., :, -1]
    if q.shape[-2]:
        out[..., 0, :] -= q[..., 0, :]
        out[..., 1:-1, :] += q[..., :-1, :] - q[..., 1:, :]
        out[..., -1, :] += q[..., -1, :]
    return out


class TVProx:
    """argmin over x in [0, 1] of  sum(d * (x - y)^2) / 2 + weight * TV(x),  TV as
    tf.image.total_variation (summed absolute differences, per channel).

    `scale` is 1/d per pixel (for an Adam step: its step size over sqrt(v) + epsilon).
    The dual variables persist between calls: successive steps are close, so a few
    iterations from the last answer suffice (AdamOptimize's tv_iterations says how many)."""

    def __init__(self, weight: float, iterations: int = 20):
        self.weight = weight
        self.iterations = iterations
        self.dual: tuple[Any, Any] | None = None
        self.shape: tuple[int, ...] = ()

    def __call__(self, y, scale):
        import torch

        if self.dual is None or self.shape != tuple(y.shape):  # a new stage's size: start over
            self.dual = tuple(torch.zeros_like(d) for d in differences(y))
            self.shape = tuple(y.shape)
        largest = float(scale.max())
        if largest == 0:  # a zero step (lr 0): nothing moves
            return y.clamp(0, 1)
        ws = self.weight * scale
        # The dual gradient's Lipschitz constant is 8 * weight^2 * max(scale); step 1/L.
        step = 1.0 / (8 * self.weight * largest)
        p, q = self.dual
        rp, rq, t = p, q, 1.0
        x = torch.empty_like(y)
        for _ in range(self.iterations):
            torch.addcmul(y, ws, _adjoint(rp, rq, x), value=-1, out=x).clamp_(0, 1)
            dx, dy = differences(x)
            pn = torch.add(rp, dx, alpha=step).clamp_(-1, 1)
            qn = torch.add(rq, dy, alpha=step).clamp_(-1, 1)
            tn = (1 + math.sqrt(1 + 4 * t * t)) / 2
            # FISTA's extrapolation pn + (t - 1) / tn * (pn - p), as one pass
            rp = torch.lerp(p, pn, 1 + (t - 1) / tn)
            rq = torch.lerp(q, qn, 1 + (t - 1) / tn)
            p, q, t = pn, qn, tn
        self.dual = (p, q)
        return torch.addcmul(y, ws, _adjoint(p, q, x), value=-1, out=x).clamp_(0, 1)
