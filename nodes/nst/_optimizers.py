"""The optimizer routes: Keras-style Adam (the tutorial's recipe) and the faster L-BFGS,
both coarse to fine, with hooks for progress, previews, cancellation and early stops.
torch is imported inside functions only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._losses import LossTerm
from ._objective import Objective
from ._tensors import resize_tensor


@dataclass
class Hooks:
    """How an optimizer talks to its node: progress, previews, cancellation."""

    step: Callable[[int, int], None] = lambda i, n: None
    preview: Callable[[Any, int], None] = lambda image, i: None
    cancelled: Callable[[], None] = lambda: None
    preview_every: int = 0
    # Stop early (the benchmark; time limits): called with each step's objective and image size.
    stop: Callable[[float, tuple], bool] = lambda total, size: False
    # Every evaluation as it happens: objective, its terms, image size (the benchmark logs them).
    evaluated: Callable[[float, dict, tuple], None] = lambda total, parts, size: None


class _Stop(Exception):
    pass


@dataclass
class History:
    total: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    size: list[list[int]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, total: float, parts: dict[str, float], size) -> None:
        self.total.append(total)
        for k, v in parts.items():
            self.terms.setdefault(k, []).append(v)
        self.seconds.append(round(time.perf_counter() - self.started, 4))
        self.size.append([int(size[0]), int(size[1])])

    def result_total(self) -> float | None:
        """The result's objective: the lowest evaluated at the final size (the Adam routes return
        that image; L-BFGS's accepted steps only go down)."""
        return result_total(self.as_dict())

    def as_dict(self) -> dict:
        return {"total": self.total, "terms": self.terms, "seconds": self.seconds, "size": self.size}


def result_total(history: dict) -> float | None:
    """History.result_total for a history as the node outputs it."""
    last = history["size"][-1] if history["size"] else None
    return min((v for v, size in zip(history["total"], history["size"], strict=False) if size == last), default=None)


def parse_schedule(text: str, full: tuple[int, int], steps: int) -> list[tuple[tuple[int, int], int]]:
    """'128:150,256:100,full:40' -> [((h, w), steps), ...]; sides are the longest side.
    Empty text means one stage at full size with `steps`."""
    if not text.strip():
        return [(full, steps)]
    stages = []
    for part in text.split(","):
        side, _, n = part.strip().partition(":")
        if not n:
            raise ValueError(f"{part!r}: expected SIDE:STEPS, e.g. 256:100")
        side_px = max(full) if side.strip() == "full" else int(side)
        scale = min(1.0, side_px / max(full))
        stages.append(((max(8, round(full[0] * scale)), max(8, round(full[1] * scale))), int(n)))
    return stages


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


def lr_at(schedule: str, lr: float, i: int, n: int) -> float:
    """constant, or cosine decay to 10% over the stage."""
    if schedule == "cosine" and n > 1:
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / (n - 1))))
    return lr


@dataclass
class _Run:
    """What an optimizer run carries across its stages: hooks, history, steps done."""

    hooks: Hooks
    total_steps: int
    history: History = field(default_factory=History)
    done: int = 0
    # The lowest-objective image evaluated at the current stage's size: the run's result.
    best: Any = None
    best_total: float = math.inf

    def record(self, total: float, parts: dict[str, float], size) -> bool:
        """Log one evaluation; False when the stop hook says the run is over."""
        self.history.add(total, parts, size)
        self.hooks.evaluated(total, parts, size)
        return not self.hooks.stop(total, size)

    def keep_if_best(self, total: float, image, copy: Callable[[Any], Any]) -> None:
        if total < self.best_total:
            self.best_total, self.best = total, copy(image)

    def score_last(self, parts: dict[str, float], size, image, copy: Callable[[Any], Any]) -> Any:
        """Log the last step's image, unseen by the stop and evaluation hooks, so the history ends
        with it; return the run's result."""
        total = sum(parts.values())
        self.history.add(total, parts, size)
        self.keep_if_best(total, image, copy)
        return self.best

    def new_stage(self) -> None:
        self.best, self.best_total = None, math.inf

    def stepped(self, image) -> None:
        self.done += 1
        self.hooks.step(self.done, self.total_steps)
        if self.hooks.preview_every and self.done % self.hooks.preview_every == 0:
            self.hooks.preview(image, self.done)


def adam_steps(
    objective: Objective, opt: KerasAdam, n: int, lr: Callable[[int], float], run: _Run, prox: Callable | None = None
) -> bool:
    """n Adam steps on opt.p (in place), clipped to [0, 1]; False if the stop hook ended the run.
    prox(y, scale, progress): KerasAdam.step's, also told how far through the n steps the run
    is (the objective then leaves its TV terms out of the gradient)."""
    import torch

    x = opt.p
    size = tuple(x.shape[-2:])
    for i in range(n):
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
        step_prox = None if prox is None else (lambda y, scale: prox(y, scale, i / max(1, n - 1)))
        opt.step(grad, lr(i), step_prox)
        x.clamp_(0, 1)
        run.stepped(x)
    return True


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

    from ._tv_prox import TVProx

    hooks = hooks or Hooks()
    tv_weight = sum(t.weight for t in terms if t.kind == "tv")
    tv_prox = TVProx(tv_weight, tv_iterations)
    prox = None
    if tv == "proximal" and tv_weight > 0:

        def prox(y, scale, progress):
            return tv_prox(y, tv_step_sizes(scale, adams_share(tv_metric, progress)))

    run = _Run(hooks, sum(n for _, n in stages))
    x = resize_tensor(start, stages[0][0]).clone()
    opt = KerasAdam(x, lr, beta1, beta2, eps)
    for size, n in stages:
        if tuple(x.shape[-2:]) != tuple(size):
            x = resize_tensor(x, size).clone()
            opt.p = x
            opt.resize(size)
        objective = Objective(terms, size, device, precision=precision, tv_in_gradient=prox is None)
        run.new_stage()
        if not adam_steps(objective, opt, n, lambda i: lr_at(lr_schedule, lr, i, n), run, prox):
            return run.best, run.history
    with torch.no_grad():
        _, parts = objective(x)
    return run.score_last(parts, x.shape[-2:], x, torch.Tensor.clone), run.history


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
    run = _Run(hooks, sum(n for _, n in stages) + adam_steps_after)
    x = resize_tensor(start, stages[0][0]).clone()
    for size, n in stages:
        levels = Pyramid(resize_tensor(x.detach().clamp(0, 1), size), pyramid)
        objective = Objective(terms, size, device, tv_smoothing, precision)
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

        try:
            while evals < n:
                before = evals
                opt.step(closure)
                if evals == before:
                    break
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
            lambda i: lr_at(adam_lr_schedule, adam_lr, i, adam_steps_after),
            run,
        )
    return x, run.history
