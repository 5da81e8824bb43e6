"""Neural style transfer benchmark (not a test): nodeflow against the TF tutorial, in one run.

    .venv/bin/python bench/nst.py                      # the full benchmark (about an hour on 2 CPU cores)
    .venv/bin/python bench/nst.py --sizes 128 --steps 3 --skip-routes

It prints, on this machine and in this run:
  1. seconds per step of a faithful TensorFlow reimplementation of the tutorial recipe
     (Keras VGG16 with the same offline weights, the same objective, Keras Adam lr 0.02,
     beta1 0.99, epsilon 0.1, clipping) and of nodeflow's AdamOptimize on torch (channels-last,
     the NCHW layout and glibc's allocator defaults for comparison) and on TensorFlow (with and
     without XLA), and their ratios;
  2. nodeflow's step time against the FLOP limit: conv FLOPs of forward plus backward (input
     gradient only; the weights are frozen) to the deepest layer, over a measured matmul GFLOP/s;
  3. for the bundled graphs (nst_starry.json, nst_starry_hq.json) on several content/style
     pairs at 512 px, the wall time to reach the objective the recipe reaches after 300, 400 and
     1000 steps, as a ratio of the recipe's time (bench/nst_routes.py; the recipe's curves are
     TSVs under bench/, written once by bench/nst_recipe.py).
Timings on a shared machine are noisy: medians are printed, and ratios come from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _nst_common import (  # before nodes: it puts the checkout on the path, sets up torch's environment
    CONTENT_LAYERS,
    CONTENT_WEIGHT,
    STYLE_LAYERS,
    STYLE_WEIGHT,
    TV_WEIGHT,
    load,
    nodeflow_step_fn,
    time_steps,
)
from nst_routes import report_routes

from nodes._shared import allocator
from nodes.nst import api

# ------------------------------------------------------------------ TensorFlow: the tutorial


class TFRecipe:
    """The TF tutorial's StyleContentModel and train_step, on Keras VGG16 with our weights."""

    def __init__(self, state: dict, content: np.ndarray, style: np.ndarray):
        import tensorflow as tf

        self.tf = tf
        vgg = tf.keras.applications.VGG16(include_top=False, weights=None)
        for layer in vgg.layers:
            if layer.name + ".weight" in state:
                w = state[layer.name + ".weight"].numpy().transpose(2, 3, 1, 0)  # OIHW -> HWIO
                layer.set_weights([w, state[layer.name + ".bias"].numpy()])
        vgg.trainable = False
        outputs = [vgg.get_layer(n).output for n in STYLE_LAYERS + CONTENT_LAYERS]
        self.model = tf.keras.Model([vgg.input], outputs)
        self.style_targets = self.call(tf.constant(style[None]))["style"]
        self.content_targets = self.call(tf.constant(content[None]))["content"]
        self.image = tf.Variable(content[None])
        self.opt = tf.keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
        self.step = tf.function(self._step)

    def __call__(self) -> float:
        """One train step; the loss before it."""
        return float(self.step().numpy()[0])

    @staticmethod
    def gram_matrix(t):
        import tensorflow as tf

        result = tf.linalg.einsum("bijc,bijd->bcd", t, t)
        shape = tf.shape(t)
        return result / tf.cast(shape[1] * shape[2], tf.float32)

    def call(self, inputs):
        tf = self.tf
        pre = tf.keras.applications.vgg16.preprocess_input(inputs * 255.0)
        outs = self.model(pre)
        style = {n: self.gram_matrix(o) for n, o in zip(STYLE_LAYERS, outs[: len(STYLE_LAYERS)], strict=False)}
        content = {n: o for n, o in zip(CONTENT_LAYERS, outs[len(STYLE_LAYERS) :], strict=False)}
        return {"style": style, "content": content}

    def loss(self, outputs):
        tf = self.tf
        s = tf.add_n([tf.reduce_mean((outputs["style"][n] - self.style_targets[n]) ** 2) for n in STYLE_LAYERS])
        c = tf.add_n([tf.reduce_mean((outputs["content"][n] - self.content_targets[n]) ** 2) for n in CONTENT_LAYERS])
        return s * STYLE_WEIGHT / len(STYLE_LAYERS) + c * CONTENT_WEIGHT / len(CONTENT_LAYERS)

    def _step(self):
        tf = self.tf
        with tf.GradientTape() as tape:
            loss = self.loss(self.call(self.image))
            loss += TV_WEIGHT * tf.image.total_variation(self.image)
        grad = tape.gradient(loss, self.image)
        self.opt.apply_gradients([(grad, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))
        return loss


# ------------------------------------------------------------------ nodeflow


def conv_flops(size: tuple[int, int], deepest: str = "block5_conv2", arch: str = "vgg16") -> float:
    """Forward conv FLOPs (2 per multiply-add) up to and including `deepest`."""
    h, w = size
    total = 0.0
    for name, (cout, cin) in api.conv_shapes(arch).items():
        if name.endswith("_conv1") and name != "block1_conv1":
            h, w = h // 2, w // 2
        total += 2.0 * cin * cout * 9 * h * w
        if name == deepest:
            break
    return total


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    import torch

    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def with_glibc_defaults(step):
    """The step with glibc's own allocator settings, put back after it (allocator.py)."""

    def run():
        allocator.keep_freed_memory(False)
        try:
            return step()
        finally:
            allocator.keep_freed_memory(True)

    return run


def nodeflow_tf_step_fn(content, style, jit_compile: bool = False):
    """One AdamOptimize step on TensorFlow (the train step the node runs), as a callable
    that waits for its result, as the node does every step."""
    import tensorflow as tf

    terms = api.tutorial_terms(content, style, framework="tensorflow")
    objective = api.TFObjective(terms, content.shape[:2], "cpu")
    image = tf.Variable(content[None])
    step = api.TrainStep(objective, image, api.tf_keras_adam(0.02, 0.99, 0.999, 0.1), jit_compile)
    return lambda: float(tf.reduce_sum(step()).numpy())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,512", help="max sides for the step timings")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per measurement (median)")
    ap.add_argument("--route-size", type=int, default=512, help="max side for the graphs' comparison")
    ap.add_argument(
        "--pairs",
        default="astronaut.png:starry_night.jpg,coffee.png:starry_night.jpg,chelsea.png:coffee.png",
        help="content:style pairs; each needs its recipe curve (bench/nst_recipe.py)",
    )
    ap.add_argument("--graphs", default="graphs/nst_starry.json,graphs/nst_starry_hq.json")
    ap.add_argument("--checkpoints", default="300,400,1000", help="recipe steps whose objective is a target")
    ap.add_argument("--skip-tf", action="store_true")
    ap.add_argument("--skip-xla", action="store_true", help="don't time the TF route compiled with XLA")
    ap.add_argument(
        "--skip-bf16",
        action="store_true",
        help="don't time bfloat16 convolutions (slow on CPUs without bfloat16 instructions)",
    )
    ap.add_argument("--skip-routes", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "nodeflow-bench-nst",
        help="where the graphs' files go (bench/nst_side_by_side.py takes them from there)",
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    state = api.vgg16_state()
    gflops = matmul_gflops()
    print(
        f"machine: {os.cpu_count()} CPU threads ({args.threads} used), torch {torch.__version__}, "
        f"matmul {gflops:.1f} GFLOP/s"
    )

    print(f"\n1-2. seconds per Adam step (median of {args.steps})")
    tf_step: dict[int, float] = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        # As in the tutorial, both images are loaded at the same max side.
        content, style = load("astronaut.png", size), load("starry_night.jpg", size)
        steps = {
            "nodeflow": nodeflow_step_fn(content, style),
            "nchw": nodeflow_step_fn(content, style, channels_last=False),
            "glibc": with_glibc_defaults(nodeflow_step_fn(content, style)),
        }
        if not args.skip_bf16:
            steps["bfloat16"] = nodeflow_step_fn(content, style, "bfloat16")
        if not args.skip_tf:
            steps["tf"] = TFRecipe(state, content, style)
            steps["nodeflow tf"] = nodeflow_tf_step_fn(content, style)
            if not args.skip_xla:
                steps["nodeflow tf xla"] = nodeflow_tf_step_fn(content, style, jit_compile=True)
        got = time_steps(steps, args.steps)
        (nf, nf_value), (bf, bf_value) = got["nodeflow"], got.get("bfloat16", (float("nan"), float("nan")))
        nchw, glibc = got["nchw"][0], got["glibc"][0]
        line = (
            f"  {size}px: nodeflow {nf:.3f} s (NCHW layout: {nchw:.3f} s, channels-last/NCHW {nf / nchw:.2f}; "
            f"bfloat16 convs: {bf:.3f} s; glibc's allocator defaults: {glibc:.3f} s, kept memory/defaults "
            f"{nf / glibc:.2f})"
        )
        if not args.skip_tf:
            tf_s, tf_value = got["tf"]
            tf_step[size] = tf_s
            line += (
                f", TF recipe {tf_s:.3f} s, ratio nodeflow/TF {nf / tf_s:.2f} (target <= 1.0; NCHW "
                f"{nchw / tf_s:.2f}) (bfloat16 {bf / tf_s:.2f}; target <= 0.5)"
            )
        limit = 2 * conv_flops(content.shape[:2]) / (gflops * 1e9)
        line += (
            f"; FLOP limit (float32) {limit:.3f} s, nodeflow/limit {nf / limit:.2f} "
            f"(bfloat16 {bf / limit:.2f}; target <= 1.3)"
        )
        print(line, flush=True)
        same = f"  {size}px: objective at step {args.steps + 2}: nodeflow {nf_value:.5g}, bfloat16 {bf_value:.5g}"
        if not args.skip_tf:
            same += f", TF {tf_value:.5g} (relative difference {abs(nf_value - tf_value) / tf_value:.1e})"
        print(same, flush=True)
        if not args.skip_tf:
            (ntf, ntf_value) = got["nodeflow tf"]
            line = (
                f"  {size}px TensorFlow route: AdamOptimize {ntf:.3f} s, TF recipe {tf_s:.3f} s, ratio "
                f"{ntf / tf_s:.2f} (target <= 1.05); vs the torch route {ntf / nf:.2f}x"
            )
            if "nodeflow tf xla" in got:
                xla, xla_value = got["nodeflow tf xla"]
                line += f"; with XLA {xla:.3f} s ({xla / tf_s:.2f}x the recipe, {xla / ntf:.2f}x without XLA)"
            print(line, flush=True)
            print(
                f"  {size}px objective at step {args.steps + 2}: AdamOptimize on TF {ntf_value:.5g} "
                f"(relative difference to the TF recipe {abs(ntf_value - tf_value) / tf_value:.1e})"
                + (f", with XLA {xla_value:.5g}" if "nodeflow tf xla" in got else ""),
                flush=True,
            )

    if not args.skip_routes:
        report_routes(
            [tuple(p.split(":")) for p in args.pairs.split(",") if p],
            args.route_size,
            [g for g in args.graphs.split(",") if g],
            [int(c) for c in args.checkpoints.split(",")],
            args.out,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
