"""Neural style transfer: loss terms and the optimizer routes.

A loss term (the value of a LOSS port) is bound to one VGG extractor and holds its own
targets, computed once per image size. The optimizers run one VGG forward per step, as deep
as the deepest layer any term needs, and sum the terms.

Defaults follow the TensorFlow NST tutorial: Gram matrices divided by H*W, the mean squared
error of each layer averaged over the layers, TV as summed absolute differences, and
Keras-style Adam (lr 0.02, beta1 0.99, epsilon 0.1) with pixels clipped to [0, 1].
The faster routes: L-BFGS, coarse-to-fine schedules, and bfloat16 convolutions.
The end of the file holds what the optimizer nodes share (loss slots, start image, outputs).
torch is imported inside functions only.
"""
from __future__ import annotations

import functools
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from pydantic import create_model

import nodes._torch
from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE, STRING, port_type

LOSS_SLOTS = 6
# A loss term holds a model and tensors: never cached. Its history is plain lists: cacheable.
LOSS = port_type("LOSS", "a weighted loss term bound to its extractor and targets",
                 persist=False, memory_cache=False, to_device=nodes._torch.move)
LOSS_HISTORY = port_type("LOSS_HISTORY", "loss per step: {total, terms: {name: [...]}, seconds, size}")

# The TF tutorial's layers and weights.
TUTORIAL_STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
TUTORIAL_CONTENT_LAYERS = ["block5_conv2"]
TUTORIAL_STYLE_WEIGHT = 1e-2
TUTORIAL_CONTENT_WEIGHT = 1e4
TUTORIAL_TV_WEIGHT = 30.0


def gram(features):
    """1 x C x H x W -> float32 C x C Gram matrix divided by H*W (the number of locations)."""
    _, c, h, w = features.shape
    return _gram_function().apply(features.reshape(c, h * w))


@functools.cache
def _gram_function():
    import torch

    class Gram(torch.autograd.Function):
        """G = F F^T / N. Autograd would spend two matmuls on the backward pass; G is symmetric,
        so dF = (dG + dG^T) F / N takes one, in the features' own dtype (bfloat16 features
        get a bfloat16 matmul). The forward pass stays float32: G is compared with a target."""

        @staticmethod
        def forward(ctx, f):
            ctx.save_for_backward(f)
            f32 = f.float()
            return (f32 @ f32.t()) / f.shape[1]

        @staticmethod
        def backward(ctx, grad):
            f, = ctx.saved_tensors
            return ((grad + grad.t()) / f.shape[1]).to(f.dtype) @ f

    return Gram


def total_variation(image, smoothing: float = 0.0):
    """tf.image.total_variation: summed absolute differences between neighbours.
    smoothing > 0 gives the Charbonnier surrogate sqrt(d^2 + s^2) - s, which is smooth
    at d = 0 (what L-BFGS needs) and never more than s away from |d|."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    if smoothing > 0:
        s2 = smoothing * smoothing
        return ((dx * dx + s2).sqrt() - smoothing).sum() + ((dy * dy + s2).sqrt() - smoothing).sum()
    return dx.abs().sum() + dy.abs().sum()


def image_tensor(image: Any, device: str):
    """IMAGE (H x W x C numpy, 0..1) -> 1 x 3 x H x W float32 tensor, always a copy (the
    optimizers write into it), made once on the host and then moved."""
    import numpy as np
    import torch

    from ._image import to_rgb
    chw = np.array(to_rgb(image).transpose(2, 0, 1), dtype=np.float32, order="C")
    return torch.from_numpy(chw)[None].to(device)


def resize_tensor(x, size: tuple[int, int]):
    import torch
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False,
                                           antialias=True).clamp(0, 1)


@dataclass
class LossTerm:
    """One weighted loss term. kind: style | content | tv."""
    kind: str
    weight: float
    layers: list[str] = field(default_factory=list)
    vgg: Any = None                 # nodes._vgg.VGG for style/content
    image: Any = None               # the style/content image (IMAGE) the targets come from
    resize_to_input: bool = False   # content: targets follow the optimized image's size
    _targets: dict = field(default_factory=dict, repr=False)

    def targets(self, size: tuple[int, int], device: str) -> dict:
        """The target of each layer, computed once per (size, device)."""
        import torch
        key = (tuple(size) if self.resize_to_input else None, device)
        if key not in self._targets:
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
            f = gram(feats[name]) if self.kind == "style" else feats[name].float()
            per_layer.append(((f - targets[name]) ** 2).mean())
        return self.weight * sum(per_layer) / len(per_layer)

    def describe(self) -> str:
        if self.kind == "tv":
            return f"tv x {self.weight:g}"
        return f"{self.kind} x {self.weight:g} on {', '.join(self.layers)} ({self.vgg.info})"

    # Terms travel between devices with the VGG they are bound to.
    def to(self, device: str) -> "LossTerm":
        return self


class Objective:
    """Sum of loss terms with one VGG forward per evaluation (per extractor)."""

    def __init__(self, terms: list[LossTerm], size: tuple[int, int], device: str,
                 tv_smoothing: float = 0.0, precision: str = "float32"):
        self.terms = terms
        self.device = device
        self.tv_smoothing = tv_smoothing
        self.precision = precision
        self.names = term_names(terms)
        self.targets = [t.targets(size, device) if t.kind != "tv" else {} for t in terms]
        self.layers: dict[int, tuple[Any, set]] = {}
        for t in terms:
            if t.vgg is not None:
                vgg = t.vgg.to(device)
                self.layers.setdefault(id(t.vgg), (vgg, set()))[1].update(t.layers)

    def __call__(self, image) -> tuple[Any, dict[str, float]]:
        """(total to differentiate, {term name: exact value}) for a 1 x 3 x H x W image in 0..1.
        With tv_smoothing, TV terms are differentiated in their smooth form but reported exactly."""
        import torch
        feats = {}
        for vid, (vgg, layers) in self.layers.items():
            if self.precision == "bfloat16":
                # The convolutions in bfloat16 (about twice as fast on CPUs with AVX512-BF16 and
                # on GPUs); Gram matrices and losses are computed in float32.
                with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16):
                    feats[vid] = vgg.features(image, layers)
            else:
                feats[vid] = vgg.features(image, layers)
        parts, report = [], {}
        for name, t, tg in zip(self.names, self.terms, self.targets):
            if t.kind == "tv" and self.tv_smoothing > 0:
                parts.append(t.weight * total_variation(image, self.tv_smoothing))
                with torch.no_grad():
                    report[name] = float(t.value({}, image, {}))
            else:
                parts.append(t.value(feats.get(id(t.vgg), {}), image, tg))
                report[name] = float(parts[-1].detach())
        return sum(parts), report


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


@dataclass
class Hooks:
    """How an optimizer talks to its node: progress, previews, cancellation."""
    step: Callable[[int, int], None] = lambda i, n: None
    preview: Callable[[Any, int], None] = lambda image, i: None
    cancelled: Callable[[], None] = lambda: None
    preview_every: int = 0
    # Stop early (used by the benchmark): called with each step's objective and image size.
    stop: Callable[[float, tuple], bool] = lambda total, size: False


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

    def as_dict(self) -> dict:
        return {"total": self.total, "terms": self.terms, "seconds": self.seconds, "size": self.size}


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

    def step(self, grad, lr: float | None = None) -> None:
        self.t += 1
        lr = self.lr if lr is None else lr
        alpha = lr * math.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        self.m.lerp_(grad, 1 - self.b1)
        self.v.lerp_(grad * grad, 1 - self.b2)
        self.p.data.addcdiv_(self.m, self.v.sqrt().add_(self.eps), value=-alpha)

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

    def record(self, total: float, parts: dict[str, float], size) -> bool:
        """Log one evaluation; False when the stop hook says the run is over."""
        self.history.add(total, parts, size)
        return not self.hooks.stop(total, size)

    def stepped(self, image) -> None:
        self.done += 1
        self.hooks.step(self.done, self.total_steps)
        if self.hooks.preview_every and self.done % self.hooks.preview_every == 0:
            self.hooks.preview(image, self.done)


def adam_steps(objective: Objective, opt: KerasAdam, n: int, lr: Callable[[int], float], run: _Run) -> bool:
    """n Adam steps on opt.p (in place), clipped to [0, 1]; False if the stop hook ended the run."""
    import torch
    x = opt.p
    size = tuple(x.shape[-2:])
    for i in range(n):
        run.hooks.cancelled()
        x.requires_grad_(True)
        total, parts = objective(x)
        grad, = torch.autograd.grad(total, x)
        x.requires_grad_(False)
        if not run.record(sum(parts.values()), parts, size):
            return False
        opt.step(grad, lr(i))
        x.clamp_(0, 1)
        run.stepped(x)
    return True


def run_adam(terms: list[LossTerm], start, *, stages, lr: float, beta1: float, beta2: float,
             eps: float, lr_schedule: str = "constant", precision: str = "float32",
             device: str = "cpu", hooks: Hooks | None = None) -> tuple[Any, History]:
    """Keras-style Adam on the pixels, clipped to [0, 1] after every step.
    `start` is the 1 x 3 x H x W starting image at full size; `stages` from parse_schedule."""
    hooks = hooks or Hooks()
    run = _Run(hooks, sum(n for _, n in stages))
    x = resize_tensor(start, stages[0][0]).clone()
    opt = KerasAdam(x, lr, beta1, beta2, eps)
    for size, n in stages:
        if tuple(x.shape[-2:]) != tuple(size):
            x = resize_tensor(x, size).clone()
            opt.p = x
            opt.resize(size)
        objective = Objective(terms, size, device, precision=precision)
        if not adam_steps(objective, opt, n, lambda i: lr_at(lr_schedule, lr, i, n), run):
            break
    return x, run.history


def run_lbfgs(terms: list[LossTerm], start, *, stages, history_size: int = 50,
              tv_smoothing: float = 0.0, precision: str = "float32", device: str = "cpu",
              adam_steps_after: int = 0, adam_lr: float = 0.05, adam_lr_schedule: str = "cosine",
              hooks: Hooks | None = None) -> tuple[Any, History]:
    """L-BFGS with a strong-Wolfe line search. The objective is evaluated on clamp(x, 0, 1),
    and its gradient there is passed on as is: a pixel pushed past a bound can come back
    (the clamp's own gradient would freeze it for good). The result is clipped. Each stage's
    steps count objective evaluations (the cost unit shared with Adam). tv_smoothing: see
    total_variation; the history still records the exact objective.

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
        x = resize_tensor(x.detach().clamp(0, 1), size).clone().requires_grad_(True)
        objective = Objective(terms, size, device, tv_smoothing, precision)
        opt = torch.optim.LBFGS([x], lr=1, max_iter=n, max_eval=n, history_size=history_size,
                                tolerance_grad=0, tolerance_change=0, line_search_fn="strong_wolfe")
        grad_sq = torch.zeros_like(x)
        evals = 0

        def closure():
            nonlocal evals
            run.hooks.cancelled()
            img = x.detach().clamp(0, 1).requires_grad_(True)
            total, parts = objective(img)
            x.grad, = torch.autograd.grad(total, img)
            if not run.record(sum(parts.values()), parts, size):
                raise _Stop
            grad_sq.mul_(0.9).addcmul_(x.grad, x.grad, value=0.1)  # Adam's v, should it finish
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
            return x.detach().clamp(0, 1), run.history
    x = x.detach().clamp(0, 1)
    if adam_steps_after:
        adam = KerasAdam(x, adam_lr, 0.99, 0.999, 0.1)
        adam.v, adam.t = grad_sq, 10 ** 6   # warm second moments; t this large: no bias correction
        adam_steps(Objective(terms, tuple(x.shape[-2:]), device, precision=precision), adam,
                   adam_steps_after, lambda i: lr_at(adam_lr_schedule, adam_lr, i, adam_steps_after), run)
    return x, run.history


def parse_layers(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def feature_term(kind: str, vgg: Any, image: Any, layers: str, weight: float, device: str) -> LossTerm:
    """A style or content term; its targets at the image's own size are computed now."""
    from ._vgg import check_layers, layer_names
    names = parse_layers(layers)
    if not names:
        raise InputError("layers", "name at least one layer, e.g. block5_conv2")
    unknown = check_layers(vgg.arch, names)
    if unknown:
        raise InputError("layers", f"{vgg.arch} has no layer {', '.join(unknown)} "
                                   f"(it has {', '.join(layer_names(vgg.arch))})")
    term = LossTerm(kind, weight, names, vgg, image, resize_to_input=(kind == "content"))
    term.targets(image.shape[:2], device)
    return term


# ---------------------------------------------------------------- the optimizer nodes' shared part
# Numbered loss slots, the start image, progress, previews, saved frames, cancellation,
# and the outputs (image, history, info).


def optimizer_inputs(name: str, **fields: Any) -> type[NodeInputs]:
    """The shared inputs plus the node's own `fields` (name -> (annotation, Input(...)))."""
    return create_model(
        name, __base__=NodeInputs,
        image=(Any, Input(port=IMAGE, description="the content image; the result has its size")),
        **{f"loss{i}": (Any, Input(None, port=LOSS, description=f"loss term {i}")) for i in range(1, LOSS_SLOTS + 1)},
        **fields,
        init=(Literal["content", "noise", "image"], Input("content", description="start from the content "
                                                           "image, uniform noise, or init_image")),
        init_image=(Any, Input(None, port=IMAGE, description="start image for init=image (resized to fit)")),
        seed=(int, Input(0, ge=0, description="seed of the noise start")),
        schedule=(str, Input("", description="coarse-to-fine stages SIDE:STEPS, e.g. '128:150,256:100,full:40' "
                                             "(longest side; overrides steps); empty: all steps at full size")),
        precision=(Literal["float32", "bfloat16"], Input("float32", description="VGG convolutions in "
                                                          "bfloat16: about 2x faster on recent CPUs and GPUs; "
                                                          "losses stay float32")),
        preview_every=(int, Input(50, ge=0, description="emit a preview image every N steps (0: never)")),
        save_frames=(bool, Input(False, description="also save each preview as a PNG in the output directory")),
        frame_prefix=(str, Input("nst_frame", min_length=1, description="file name prefix of saved frames")),
    )


class OptimizerOutputs(NodeOutputs):
    image: Any = Output(IMAGE, "the optimized image")
    history: Any = Output(LOSS_HISTORY, "loss per step: total and per term")
    info: Any = Output(STRING, "JSON: which weights produced the image, the route, the final loss")


class OptimizerNode(Node, abstract=True):
    category = "style transfer"
    frameworks = ("torch",)
    devices = ("cuda", "mps", "cpu")
    deterministic = False  # the noise start; seeded, so still cached
    seed_input = "seed"
    Outputs = OptimizerOutputs
    route = ""

    def optimize(self, terms: list, start: Any, stages: list, hooks: Any, **options: Any) -> tuple:
        raise NotImplementedError

    def run(self, image: Any, init: str, init_image: Any, seed: int, schedule: str, precision: str,
            preview_every: int, save_frames: bool, frame_prefix: str, steps: int, **rest: Any) -> dict:
        import torch

        from ._image import fit_max_side, from_torch, resize, to_rgb
        terms = [rest.pop(f"loss{i}") for i in range(1, LOSS_SLOTS + 1)]
        terms = [t for t in terms if t is not None]
        if not terms:
            raise InputError("loss1", "link at least one loss term (StyleLoss, ContentLoss, TVLoss)")
        device = self.ctx.device
        content = to_rgb(image)
        h, w = content.shape[:2]
        try:
            stages = parse_schedule(schedule, (h, w), steps)
        except ValueError as exc:
            raise InputError("schedule", str(exc)) from None
        if init == "image":
            if init_image is None:
                raise InputError("init_image", "init=image needs an init_image link")
            start = image_tensor(resize(to_rgb(init_image), w, h), device)
        elif init == "noise":
            gen = torch.Generator().manual_seed(seed)
            start = torch.rand(1, 3, h, w, generator=gen).to(device)
        else:
            start = image_tensor(content, device)

        def preview(x: Any, step: int) -> None:
            frame = from_torch(x)
            self.ctx.preview(fit_max_side(frame, 512))
            if save_frames:
                self._save_frame(frame, f"{frame_prefix}_{step:05d}.png")

        hooks = Hooks(step=lambda i, n: self.ctx.progress(i, n), preview=preview,
                      cancelled=self.ctx.check_cancelled, preview_every=preview_every)
        result, history = self.optimize(terms, start, stages, hooks, precision=precision, **rest)
        out = from_torch(resize_tensor(result, (h, w)))
        weights = sorted({t.vgg.info for t in terms if t.vgg is not None})
        info = {"weights": weights[0] if len(weights) == 1 else weights,
                "weight_files": sorted({t.vgg.weights for t in terms if t.vgg is not None}),
                "route": self.route, "precision": precision, "stages": [[list(s), n] for s, n in stages],
                "terms": [t.describe() for t in terms],
                "steps": len(history.total), "final_loss": history.total[-1] if history.total else None,
                "seconds": history.seconds[-1] if history.seconds else 0.0}
        self.ctx.log(f"{self.route}: {len(history.total)} steps, loss {history.total[0]:.4g} -> "
                     f"{history.total[-1]:.4g} in {info['seconds']:.1f}s; weights {info['weights']}")
        return {"image": out, "history": history.as_dict(), "info": json.dumps(info)}

    def _save_frame(self, frame: Any, name: str) -> None:
        from nodeflow.cache import atomic_write

        from ._image import to_pil
        path = self.ctx.settings.output_path(name, "frame_prefix")
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        to_pil(frame).save(buf, "PNG")
        atomic_write(path, buf.getvalue())
        self.ctx.wrote(path)

