"""The L-BFGS route: L-BFGS with a strong-Wolfe line search on the pixels (or on a pyramid of
them), coarse to fine, optionally finished by Adam. torch is imported inside functions only."""

from __future__ import annotations

from functools import partial
from typing import Any

from ._adam import adam_state, adam_steps, restore_adam
from ._checkpoint import torch_dump, torch_load
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


def lbfgs_stage(
    levels: Pyramid,
    objective: Objective,
    size,
    n: int,
    history_size: int,
    run: RunRecord,
    first: int = 0,
    grad_sq=None,
    save=None,
):
    """One stage: L-BFGS on the pyramid's levels (in place) for n objective evaluations, or
    until a step evaluates nothing. Returns the running mean of the squared gradients (Adam's
    v, should Adam finish the run); raises _Stop when the stop hook ends the run.
    first: evaluations already done (a resumed stage); save(evals done, image, grad_sq): called
    when a checkpoint is due, with the lowest-objective image evaluated so far in the stage
    (L-BFGS's own curvature history is not saved: a resumed stage builds it again)."""
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
    grad_sq = torch.zeros_like(levels.levels[0]) if grad_sq is None else grad_sq
    evals = first
    lowest, lowest_image = float("inf"), None

    def closure():
        nonlocal evals, lowest, lowest_image
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
        if save is not None:
            value = float(total.detach())
            if value < lowest:
                lowest, lowest_image = value, img.detach().clone()
            if evals < n and run.checkpoint_due():
                save(evals, lowest_image, grad_sq)
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
    ckpt = hooks.checkpoint
    state = torch_load("lbfgs", ckpt.load(), device) if ckpt is not None else None
    first_stage, first_step, grad_sq = 0, 0, None
    if state is not None and state["stage"] < len(stages):  # resume an L-BFGS stage
        first_stage, first_step, grad_sq = state["stage"], state["step"], state["grad_sq"]
        x = state["x"]
        run.restore(state["run"], None)
    elif state is not None:  # resume the Adam finish
        first_stage = len(stages)
        grad_sq = state["grad_sq"]
    if state is not None:
        assert ckpt is not None
        ckpt.resumed = state["run"]["done"]

    def save_stage(stage: int, evals: int, image, sq) -> None:
        assert ckpt is not None
        ckpt.write(
            torch_dump(
                "lbfgs",
                {"stage": stage, "step": evals, "x": image.cpu(), "grad_sq": sq.cpu(), "run": run.state()},
            )
        )

    for s, (size, n) in enumerate(stages):
        if s < first_stage:
            continue
        resumed = state is not None and s == first_stage
        levels = Pyramid(resize_tensor(x.detach().clamp(0, 1), size), pyramid)
        objective = Objective(terms, size, device, tv_smoothing, precision)
        try:
            grad_sq = lbfgs_stage(
                levels,
                objective,
                size,
                n,
                history_size,
                run,
                first_step if resumed else 0,
                grad_sq if resumed else None,
                partial(save_stage, s) if ckpt is not None else None,
            )
        except _Stop:
            return levels.image().detach().clamp(0, 1), run.history
        with torch.no_grad():
            x = levels.image()
    x = x.detach().clamp(0, 1)
    if adam_steps_after:
        adam = KerasAdam(x, adam_lr, 0.99, 0.999, 0.1)
        adam.v, adam.t = grad_sq, 10**6  # warm second moments; t this large: no bias correction
        first = 0
        if state is not None and first_stage == len(stages):
            restore_adam(state, adam, run)
            x, first = adam.p, state["step"]

        def save_adam(step: int) -> None:
            assert ckpt is not None
            ckpt.write(torch_dump("lbfgs", {**adam_state(len(stages), step, adam, run), "grad_sq": grad_sq.cpu()}))

        adam_steps(
            Objective(terms, tuple(x.shape[-2:]), device, precision=precision),
            adam,
            adam_steps_after,
            partial(lr_at, adam_lr_schedule, adam_lr, n=adam_steps_after),
            run,
            first=first,
            save=save_adam if ckpt is not None else None,
        )
    return x, run.history
