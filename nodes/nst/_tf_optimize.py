"""AdamOptimize on TensorFlow: the tutorial's train step (GradientTape, Keras Adam, clipping)
as a tf.function, coarse to fine, with the same hooks and history as the torch route
(_adam.py, _run_record.py). TensorFlow is imported inside functions only."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nodes._shared.tf_device import tf_device

from ._checkpoint import npz_dump, npz_load
from ._losses import LossTerm, term_names
from ._run_record import History, Hooks, RunRecord
from ._schedules import lr_at
from ._tf_losses import resize_image, term_value


class TFObjective:
    """Sum of loss terms with one VGG forward per evaluation (per extractor)."""

    def __init__(self, terms: list[LossTerm], size: tuple[int, int], device: str):
        self.terms = terms
        self.names = term_names(terms)
        self.targets = [t.targets(size, device) if t.kind != "tv" else {} for t in terms]
        self.layers: dict[int, tuple[Any, set]] = {}
        for t in terms:
            if t.vgg is not None:
                self.layers.setdefault(id(t.vgg), (t.vgg, set()))[1].update(t.layers)

    def __call__(self, image) -> tuple[Any, Any]:
        """(total, the terms' values stacked in `names` order) for a 1 x H x W x 3 image."""
        import tensorflow as tf

        feats = {vid: vgg.features(image, layers) for vid, (vgg, layers) in self.layers.items()}
        pairs = zip(self.terms, self.targets, strict=False)
        parts = [term_value(t, feats.get(id(t.vgg), {}), image, tg) for t, tg in pairs]
        return tf.add_n(parts), tf.stack(parts)


class TrainStep:
    """The tutorial's train_step: the objective's gradient, one Keras Adam update, clipping
    to [0, 1]. Returns the terms' values before the update."""

    def __init__(self, objective: TFObjective, image, optimizer, jit_compile: bool = False):
        import tensorflow as tf

        self.objective, self.image, self.optimizer = objective, image, optimizer
        optimizer.build([image])
        self.step = tf.function(self._step, jit_compile=jit_compile)

    def _step(self):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            total, parts = self.objective(self.image)
        grad = tape.gradient(total, self.image)
        self.optimizer.apply_gradients([(grad, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))
        return parts

    def __call__(self):
        return self.step()


def keras_adam(lr: float, beta1: float, beta2: float, eps: float):
    """The Keras Adam optimizer the tutorial steps with."""
    import tensorflow as tf

    return tf.keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2, epsilon=eps)


def _carry_moments(old, new, image, size: tuple[int, int]) -> None:
    """Start `new` (built on `image`) from `old`'s moments, upsampled to `size`, and its step
    count, as the torch route's KerasAdam.resize does across a coarse-to-fine stage."""
    import tensorflow as tf

    new.build([image])
    new._momentums[0].assign(tf.image.resize(old._momentums[0], size, method="bilinear"))
    new._velocities[0].assign(tf.maximum(tf.image.resize(old._velocities[0], size, method="bilinear"), 0.0))
    new.iterations.assign(old.iterations)


def run_adam_tf(
    terms: list[LossTerm],
    start: np.ndarray,
    *,
    stages,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    lr_schedule: str = "constant",
    device: str = "cpu",
    hooks: Hooks | None = None,
    jit_compile: bool = False,
) -> tuple[np.ndarray, History]:
    """Keras Adam on the pixels, clipped to [0, 1] after every step, as a tf.function.
    `start` is the H x W x 3 starting image at full size; `stages` from parse_schedule.
    Returns the H x W x 3 result at the last stage's size and the history; as on the torch
    route, the history ends with the last step's image's objective and the result is the
    lowest-objective image of the last stage. The stop hook (benchmarks) ends the run after
    the step it was given, with the best image so far."""
    import tensorflow as tf

    hooks = hooks or Hooks()
    # Previews get numpy images, as the node expects them from either route.
    run = RunRecord(
        dataclasses.replace(hooks, preview=lambda x, i: hooks.preview(x.numpy()[0], i)), sum(n for _, n in stages)
    )
    ckpt = hooks.checkpoint
    saved = npz_load("adam-tf", ckpt.load()) if ckpt is not None else None
    with tf.device(tf_device(device)):
        image = tf.Variable(resize_image(tf.constant(start[None]), stages[0][0]))
        opt = keras_adam(lr, beta1, beta2, eps)
        first_stage, first_step = 0, 0
        if saved is not None:  # resume where the last checkpoint left off
            meta, arrays = saved
            first_stage, first_step = int(meta["stage"]), int(meta["step"])
            image = tf.Variable(arrays["x"])
            opt.build([image])
            opt._momentums[0].assign(arrays["m"])
            opt._velocities[0].assign(arrays["v"])
            opt.iterations.assign(int(meta["iterations"]))
            run.restore(meta["run"], arrays.get("best"))
            assert ckpt is not None
            ckpt.resumed = run.done

        def save(stage: int, step: int) -> None:
            assert ckpt is not None
            arrays = {
                "x": image.numpy(),
                "m": opt._momentums[0].numpy(),
                "v": opt._velocities[0].numpy(),
            }
            if run.best is not None:
                arrays["best"] = np.asarray(run.best)
            meta = {"stage": stage, "step": step, "iterations": int(opt.iterations.numpy()), "run": run.state()}
            ckpt.write(npz_dump("adam-tf", meta, arrays))

        for s, (size, n) in enumerate(stages):
            if s < first_stage:
                continue
            resumed = saved is not None and s == first_stage
            if tuple(image.shape[1:3]) != tuple(size):
                image = tf.Variable(resize_image(image, size))
                old, opt = opt, keras_adam(lr, beta1, beta2, eps)
                _carry_moments(old, opt, image, size)
            objective = TFObjective(terms, size, device)
            step = TrainStep(objective, image, opt, jit_compile)
            if not resumed:
                run.new_stage()
            for i in range(first_step if resumed else 0, n):
                run.hooks.cancelled()
                if lr_schedule != "constant":
                    opt.learning_rate = lr_at(lr_schedule, lr, i, n)
                before = image.numpy()[0]
                values = step().numpy()
                parts = dict(zip(objective.names, map(float, values), strict=False))
                value = sum(parts.values())
                go_on = run.record(value, parts, size)
                run.keep_if_best(value, before, lambda a: a)
                if not go_on:
                    return run.best, run.history
                run.stepped(image)
                if ckpt is not None and i + 1 < n and ckpt.due():
                    save(s, i + 1)
        parts = dict(zip(objective.names, map(float, objective(image)[1].numpy()), strict=False))
    return run.score_last(parts, size, image.numpy()[0], lambda a: a), run.history
