"""The L-BFGS route: L-BFGS with a strong-Wolfe line search on the pixels (or on a pyramid of
them), coarse to fine, optionally finished by Adam. torch is imported inside functions only."""

from __future__ import annotations

from functools import partial
from typing import Any

from ._adam import adam_steps
from ._keras_adam import KerasAdam
from ._losses import LossTerm
from ._objective import Objective
from ._run_record import History, Hooks, RunRecord
from ._schedules import lr_at
from ._tensors import resize_tensor


class _Stop(Exception):
    """The stop hook ended the run in the middle of an L-BFGS step."""


class Pyramid:
    """The image as a Laplacian-style pyramid: full-size pixels plus coarser images (each half
    the side of the one before), upsampled and summed. A gradient step on a coarse level
    moves a whole region at once, so L-BFGS settles coarse structure in fewer evaluations
    (at 256 px, 4 levels reached the plain route's objective at evaluation 60 in about 50);
    the coarse levels start at zero, so the image starts as it was."""

    def __init__(self, image, levels: int):
        import torch

        h, w = image.shape[-2:]
        self.size = (h, w)
        self.levels = [image.clone().requires_grad_(True)] + [
            torch.zeros(1, 3, max(1, h >> k), max(1, w >> k), device=image.device, requires_grad=True)
            for k in range(1, levels)
        ]

    def image(self):
        import torch.nn.functional as F

        x = self.levels[0]
        for level in self.levels[1:]:
            x = x + F.interpolate(level, size=self.size, mode="bilinear", align_corners=False)
        return x


def lbfgs_stage(levels: Pyramid, objective: Objective, size, n: int, history_size: int, run: RunRecord):
    """One stage: L-BFGS on the pyramid's levels (in place) for n objective evaluations, or
    until a step evaluates nothing. Returns the running mean of the squared gradients (Adam's
    v, should Adam finish the run); raises _Stop when the stop hook ends the run."""
    import torch

    opt = torch.optim.LBFGS(
        levels.levels,
        lr=1,
        max_iter=n,
        max_eval=n,
        history_size=history_size,
        tolerance_grad=0,
        tolerance_change=0,
        line_search_fn="strong_wolfe",
    )
    grad_sq = torch.zeros_like(levels.levels[0])
    evals = 0

    def closure():
        nonlocal evals
        run.hooks.cancelled()
        opt.zero_grad()
        x = levels.image()
        img = x.detach().clamp(0, 1).requires_grad_(True)
        total, parts = objective(img)
        (grad,) = torch.autograd.grad(total, img)
        x.backward(grad)
        if not run.record(sum(parts.values()), parts, size):
            raise _Stop
        grad_sq.mul_(0.9).addcmul_(grad, grad, value=0.1)  # Adam's v, should it finish
        evals += 1
        run.stepped(img.detach())
        return total.detach()

    while evals < n:
        before = evals
        opt.step(closure)
        if evals == before:
            break
    return grad_sq


def run_lbfgs(
    terms: list[LossTerm],
    start,
    *,
    stages,
    history_size: int = 50,
    tv_smoothing: float = 0.0,
    precision: str = "float32",
    device: str = "cpu",
    pyramid: int = 1,
    adam_steps_after: int = 0,
    adam_lr: float = 0.05,
    adam_lr_schedule: str = "cosine",
    hooks: Hooks | None = None,
) -> tuple[Any, History]:
    """L-BFGS with a strong-Wolfe line search. The objective is evaluated on clamp(x, 0, 1),
    and its gradient there is passed on as is: a pixel pushed past a bound can come back
    (the clamp's own gradient would freeze it for good). The result is clipped. Each stage's
    steps count objective evaluations (the cost unit shared with Adam). tv_smoothing: see
    total_variation; the history still records the exact objective. pyramid: optimize the
    image as a Pyramid of that many levels (1: the pixels themselves).

    adam_steps_after: then continue at the last stage's size with Adam (beta1 0.99, epsilon
    0.1) and adam_lr_schedule (see lr_at). L-BFGS is fast early but stalls late, where Adam
    keeps going; annealing the lr gives a last drop. Adam is warm-started:
    its second moments are the recent L-BFGS gradients' and its momentum starts at zero, with
    no bias correction, so its first steps are small and do not shake the L-BFGS result."""
    import torch

    hooks = hooks or Hooks()
    run = RunRecord(hooks, sum(n for _, n in stages) + adam_steps_after)
    x = resize_tensor(start, stages[0][0]).clone()
    for size, n in stages:
        levels = Pyramid(resize_tensor(x.detach().clamp(0, 1), size), pyramid)
        objective = Objective(terms, size, device, tv_smoothing, precision)
        try:
            grad_sq = lbfgs_stage(levels, objective, size, n, history_size, run)
        except _Stop:
            return levels.image().detach().clamp(0, 1), run.history
        with torch.no_grad():
            x = levels.image()
    x = x.detach().clamp(0, 1)
    if adam_steps_after:
        adam = KerasAdam(x, adam_lr, 0.99, 0.999, 0.1)
        adam.v, adam.t = grad_sq, 10**6  # warm second moments; t this large: no bias correction
        adam_steps(
            Objective(terms, tuple(x.shape[-2:]), device, precision=precision),
            adam,
            adam_steps_after,
            partial(lr_at, adam_lr_schedule, adam_lr, n=adam_steps_after),
            run,
        )
    return x, run.history
