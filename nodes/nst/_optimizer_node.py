"""What the optimizer nodes share: numbered loss slots, the start image, progress,
previews, saved frames, cancellation, and the outputs (image, history, info)."""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import numpy as np
from pydantic import create_model

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE, STRING
from nodes._shared.ports import LOSS_HISTORY

from ._ports import LOSS
from ._run_record import Checkpointing, Hooks, TimeLimit
from ._schedules import parse_schedule
from ._tensors import image_tensor, resize_tensor

LOSS_SLOTS = 6


def optimizer_inputs(name: str, **fields: Any) -> type[NodeInputs]:
    """The shared inputs plus the node's own `fields` (name -> (annotation, Input(...)))."""
    return create_model(
        name,
        __base__=NodeInputs,
        image=(Any, Input(port=IMAGE, description="the content image; the result has its size")),
        **{f"loss{i}": (Any, Input(None, port=LOSS, description=f"loss term {i}")) for i in range(1, LOSS_SLOTS + 1)},
        **fields,
        init=(
            Literal["content", "noise", "image"],
            Input("content", description="start from the content image, uniform noise, or init_image"),
        ),
        init_image=(Any, Input(None, port=IMAGE, description="start image for init=image (resized to fit)")),
        seed=(int, Input(0, ge=0, description="seed of the noise start")),
        schedule=(
            str,
            Input(
                "",
                description="coarse-to-fine stages SIDE:STEPS, e.g. '128:150,256:100,full:40' "
                "(longest side; overrides steps); empty: all steps at full size",
            ),
        ),
        precision=(
            Literal["float32", "bfloat16", "auto"],
            Input(
                "float32",
                description="VGG convolutions "
                "in bfloat16: much faster on CPUs with "
                "AVX512-BF16 or AMX and on GPUs that support it, far slower "
                "elsewhere (emulated); auto: bfloat16 only where it is fast. Losses "
                "stay float32",
            ),
        ),
        time_limit=(
            float,
            Input(
                0.0,
                ge=0,
                description="stop after this many seconds of optimizing, at the "
                "step under way, and keep the best image so far (0: no "
                "limit); the result then depends on the machine's speed",
            ),
        ),
        preview_every=(int, Input(50, ge=0, description="emit a preview image every N steps (0: never)")),
        save_frames=(bool, Input(False, description="also save each preview as a PNG in the output directory")),
        frame_prefix=(
            str,
            Input("nst_frame", min_length=1, names_file=True, description="file name prefix of saved frames"),
        ),
    )


class OptimizerOutputs(NodeOutputs):
    image: Any = Output(IMAGE, "the optimized image")
    history: Any = Output(LOSS_HISTORY, "loss per step: total and per term")
    info: Any = Output(STRING, "JSON: which weights produced the image, the route, the final loss")


class OptimizerNode(Node, abstract=True):
    category = "style transfer"
    frameworks = ("torch",)  # AdamOptimize adds tensorflow
    devices = ("cuda", "mps", "cpu")
    deterministic = False  # the noise start; seeded, so still cached
    seed_input = "seed"
    Outputs = OptimizerOutputs
    route = ""

    def optimize(self, terms: list, start: Any, stages: list, hooks: Any, **options: Any) -> tuple:
        raise NotImplementedError

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        # Frame names stay inside the output folder: found before a long run, not at its first frame.
        if inputs.get("save_frames") and isinstance(inputs.get("frame_prefix"), str):
            settings.output_path(f"{inputs['frame_prefix']}_00000.png", "frame_prefix")

    @classmethod
    def check_framework(cls, framework: str | None, inputs: dict[str, Any]) -> None:
        if framework == "tensorflow" and inputs.get("precision") == "bfloat16":
            raise InputError(
                "precision",
                "bfloat16 convolutions are on the torch route only; TensorFlow loss terms optimize in float32",
            )

    def run(
        self,
        image: Any,
        init: str,
        init_image: Any,
        seed: int,
        schedule: str,
        precision: str,
        time_limit: float,
        preview_every: int,
        save_frames: bool,
        frame_prefix: str,
        steps: int,
        **rest: Any,
    ) -> dict:
        from nodes._shared.pixels import fit_max_side, from_torch, resize, to_rgb

        terms = [rest.pop(f"loss{i}") for i in range(1, LOSS_SLOTS + 1)]
        terms = [t for t in terms if t is not None]
        if not terms:
            raise InputError("loss1", "link at least one loss term (StyleLoss, ContentLoss, TVLoss)")
        # The planner has checked that the terms share one framework (TV terms have none).
        framework = next((t.framework for t in terms if t.framework), self.frameworks[0])
        content = to_rgb(image)
        h, w = content.shape[:2]
        try:
            stages = parse_schedule(schedule, (h, w), steps)
        except ValueError as exc:
            raise InputError("schedule", str(exc)) from None
        if init == "image" and init_image is None:
            raise InputError("init_image", "init=image needs an init_image link")
        first = resize(to_rgb(init_image), w, h) if init == "image" else content
        start = _start_image(framework, first, init == "noise", seed, self.ctx.device)
        if framework == "torch":
            from ._precision import resolve_precision

            precision, note = resolve_precision(precision, self.ctx.device)
            if note:
                self.ctx.log(note)
        elif precision == "auto":
            precision = "float32"

        def preview(x: Any, step: int) -> None:
            frame = x if isinstance(x, np.ndarray) else from_torch(x)
            self.ctx.preview(fit_max_side(frame, 512))
            if save_frames:
                self._save_frame(frame, f"{frame_prefix}_{step:05d}.png")

        done = 0

        def step(i: int, n: int) -> None:
            nonlocal done
            done = i
            self.ctx.progress(i, n)

        limit = TimeLimit(time_limit)
        interval = getattr(self.ctx, "checkpoint_interval", None)
        # A checkpoint at most every `interval` seconds (the server's jobs; none in the CLI).
        ckpt = None if interval is None else Checkpointing(self.ctx.load_checkpoint, self.ctx.save_checkpoint, interval)
        hooks = Hooks(
            step=step,
            preview=preview,
            cancelled=self.ctx.check_cancelled,
            preview_every=preview_every,
            stop=limit,
            checkpoint=ckpt,
        )
        result, history = self.optimize(terms, start, stages, hooks, precision=precision, framework=framework, **rest)
        out = resize(result, w, h) if isinstance(result, np.ndarray) else from_torch(resize_tensor(result, (h, w)))
        weights = sorted({t.vgg.info for t in terms if t.vgg is not None})
        info = {
            "weights": weights[0] if len(weights) == 1 else weights,
            "weight_files": sorted({t.vgg.weights for t in terms if t.vgg is not None}),
            "route": self.route,
            "framework": framework,
            "precision": precision,
            "stages": [[list(s), n] for s, n in stages],
            "terms": [t.describe() for t in terms],
            "steps": done,
            "time_limited": limit.reached,
            "resumed_from_step": ckpt.resumed if ckpt is not None else None,
            "checkpoints_saved": ckpt.saves if ckpt is not None else 0,
            "evaluations": len(history.total),
            "final_loss": history.result_total(),
            "seconds": history.seconds[-1] if history.seconds else 0.0,
        }
        if ckpt is not None and ckpt.resumed is not None:
            self.ctx.log(f"{self.route}: resumed from a checkpoint at step {ckpt.resumed}")
        self.ctx.log(
            f"{self.route}: {info['steps']} steps, loss {history.total[0]:.4g} -> "
            f"{info['final_loss']:.4g} in {info['seconds']:.1f}s; weights {info['weights']}"
        )
        return {"image": out, "history": history.as_dict(), "info": json.dumps(info)}

    def _save_frame(self, frame: Any, name: str) -> None:
        from nodeflow.cache import atomic_write
        from nodes._shared.pixels import to_pil

        path = self.ctx.settings.output_path(name, "frame_prefix")
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        to_pil(frame).save(buf, "PNG")
        atomic_write(path, buf.getvalue())
        self.ctx.wrote(path)


def _start_image(framework: str, image: np.ndarray, noise: bool, seed: int, device: str) -> Any:
    """The optimizers' start: a 1 x 3 x H x W tensor on torch, an H x W x 3 array for the
    TensorFlow route; with `noise`, seeded uniform noise of the image's size instead."""
    h, w = image.shape[:2]
    if framework == "tensorflow":
        return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32) if noise else image
    if noise:
        import torch

        return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)).to(device)
    return image_tensor(image, device)
