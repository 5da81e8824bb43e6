"""The proximal step of the TV term: the exact minimizer of a weighted squared distance plus
total variation inside the [0, 1] box, by Beck and Teboulle's fast gradient projection on
the dual (2009), in a diagonal metric (per-pixel step sizes; adams_share below says which).

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


def tv_step_sizes(scale, adams_share: float):
    """Each pixel's step size for the TV proximal step from Adam's (`scale`: step size over
    sqrt(v)): scale^share * mean(scale)^(1 - share)."""
    return scale.pow(adams_share).mul_(float(scale.mean()) ** (1 - adams_share))


def adams_share(metric: str, progress: float) -> float:
    """How much of Adam's own metric the TV step takes, `progress` (0 to 1) through a stage.
    "evened", 0.5 throughout: the geometric mean of Adam's step and the image's mean. In Adam's
    own metric the pixels where the style and content gradients are strongest, the face's, got
    the weakest TV step and kept their texture; halving the spread gave 2.101e6 against 2.194e6
    after 90 float32 steps at 512 px and a face-box TV 0.77x (README).
    "evened_then_adam": so through the first half, then growing to 1. With one metric for the
    gradient step and another for the TV step, the run's fixed point is not the objective's
    minimizer: it weighs the style and content terms by sqrt(Adam's step / the mean) per pixel.
    HQ route, 430 bfloat16 steps: 1.545e6 against 1.564e6 evened throughout; the main graph's
    240 steps (both at 10 dual iterations): 1.727e6 against 1.739e6, but a face-box TV of 1.12x
    the recipe's against 1.06x."""
    return 0.5 if metric == "evened" else 0.5 + max(0.0, progress - 0.5)
