"""The Adam route: Keras-style Adam on the pixels, coarse to fine, with the TV terms in the
gradient or as a proximal step after each update. torch is imported inside functions only."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ._checkpoint import torch_dump, torch_load
from ._keras_adam import KerasAdam
from ._losses import LossTerm
from ._objective import Objective
from ._run_record import History, Hooks, RunRecord
from ._schedules import lr_at
from ._tensors import resize_tensor
from ._tv_prox import TVProx, adams_share, tv_step_sizes


def _at_progress(prox: Callable, progress: float) -> Callable:
    """prox(y, scale, progress) as KerasAdam.step takes it: prox(y, scale)."""
    return lambda y, scale: prox(y, scale, progress)


def adam_steps(
    objective: Objective,
    opt: KerasAdam,
    n: int,
    lr: Callable[[int], float],
    run: RunRecord,
    prox: Callable | None = None,
    first: int = 0,
    save: Callable[[int], None] | None = None,
) -> bool:
    """n Adam steps on opt.p (in place), clipped to [0, 1]; False if the stop hook ended the run.
    prox(y, scale, progress): KerasAdam.step's, also told how far through the n steps the run
    is (the objective then leaves its TV terms out of the gradient). first: the steps already
    done (a resumed run); save(steps done): called when a checkpoint is due."""
    import torch

    x = opt.p
    size = tuple(x.shape[-2:])
    for i in range(first, n):
        run.hooks.cancelled()
        x.requires_grad_(True)
        total, parts = objective(x)
        (grad,) = torch.autograd.grad(total, x)
        x.requires_grad_(False)
        value = sum(parts.values())
        go_on = run.record(value, parts, size)
        run.keep_if_best(value, x, torch.Tensor.clone)
        if not go_on:
            return False
        opt.step(grad, lr(i), None if prox is None else _at_progress(prox, i / max(1, n - 1)))
        x.clamp_(0, 1)
        run.stepped(x)
        if save is not None and i + 1 < n and run.checkpoint_due():
            save(i + 1)
    return True


def adam_state(stage: int, step: int, opt: KerasAdam, run: RunRecord, prox: TVProx | None = None) -> dict:
    """A checkpoint of an Adam run: where it is (stage, steps done in it), the pixels, Adam's
    moments and count, the proximal TV step's dual variables, the history and the best image."""
    return {
        "stage": stage,
        "step": step,
        "x": opt.p.detach().cpu(),
        "m": opt.m.cpu(),
        "v": opt.v.cpu(),
        "t": opt.t,
        "dual": None if prox is None or prox.dual is None else [d.cpu() for d in prox.dual],
        "run": run.state(),
        "best": None if run.best is None else run.best.cpu(),
    }


def restore_adam(state: dict, opt: KerasAdam, run: RunRecord, prox: TVProx | None = None) -> None:
    opt.p = state["x"].clone()
    opt.m, opt.v, opt.t = state["m"], state["v"], int(state["t"])
    if prox is not None and state["dual"] is not None:
        prox.dual = tuple(state["dual"])
        prox.shape = tuple(opt.p.shape)
    run.restore(state["run"], state["best"])


def run_adam(
    terms: list[LossTerm],
    start,
    *,
    stages,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    lr_schedule: str = "constant",
    tv: str = "gradient",
    tv_metric: str = "evened",
    tv_iterations: int = 20,
    precision: str = "float32",
    device: str = "cpu",
    hooks: Hooks | None = None,
) -> tuple[Any, History]:
    """Keras-style Adam on the pixels, clipped to [0, 1] after every step.
    `start` is the 1 x 3 x H x W starting image at full size; `stages` from parse_schedule.
    tv "proximal": TV terms leave the gradient; each step ends with their exact proximal
    step instead (proximal Adam; _tv_prox.py says why), in a metric drawn from Adam's
    (tv_metric: see adams_share), by tv_iterations dual iterations (TVProx).
    The last step's image is evaluated too, so the history ends with the result's objective;
    the result is the lowest-objective image of the last stage (late steps can overshoot)."""
    import torch

    hooks = hooks or Hooks()
    tv_weight = sum(t.weight for t in terms if t.kind == "tv")
    tv_prox = TVProx(tv_weight, tv_iterations)
    prox = None
    if tv == "proximal" and tv_weight > 0:

        def prox(y, scale, progress):
            return tv_prox(y, tv_step_sizes(scale, adams_share(tv_metric, progress)))

    run = RunRecord(hooks, sum(n for _, n in stages))
    x = resize_tensor(start, stages[0][0]).clone()
    opt = KerasAdam(x, lr, beta1, beta2, eps)
    ckpt = hooks.checkpoint
    state = torch_load("adam", ckpt.load(), device) if ckpt is not None else None
    if state is not None:  # resume where the last checkpoint left off
        restore_adam(state, opt, run, tv_prox)
        x = opt.p
        assert ckpt is not None
        ckpt.resumed = run.done
    first_stage, first_step = (state["stage"], state["step"]) if state is not None else (0, 0)

    def save(stage: int, step: int) -> None:
        assert ckpt is not None
        ckpt.write(torch_dump("adam", adam_state(stage, step, opt, run, tv_prox)))

    for s, (size, n) in enumerate(stages):
        if s < first_stage:
            continue
        resumed = state is not None and s == first_stage
        if tuple(x.shape[-2:]) != tuple(size):
            x = resize_tensor(x, size).clone()
            opt.p = x
            opt.resize(size)
        objective = Objective(terms, size, device, precision=precision, tv_in_gradient=prox is None)
        if not resumed:
            run.new_stage()
        steps = partial(lr_at, lr_schedule, lr, n=n)
        saving = partial(save, s) if ckpt is not None else None
        if not adam_steps(objective, opt, n, steps, run, prox, first_step if resumed else 0, saving):
            return run.best, run.history
    with torch.no_grad():
        _, parts = objective(x)
    return run.score_last(parts, x.shape[-2:], x, torch.Tensor.clone), run.history
