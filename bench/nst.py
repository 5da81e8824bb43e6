"""Neural style transfer benchmark (not a test): nodeflow against the TF tutorial, in one run.

    .venv/bin/python bench/nst.py                      # the full benchmark (hours on 2 CPU cores)
    .venv/bin/python bench/nst.py --sizes 128 --steps 5 --recipe-steps 100 --checkpoints 50,100

It prints, on this machine and in this run:
  1. seconds per step of a faithful TensorFlow reimplementation of the tutorial recipe
     (Keras VGG16 with the same offline weights, the same objective, Keras Adam lr 0.02,
     beta1 0.99, epsilon 0.1, clipping) and of nodeflow's AdamOptimize on torch and on
     TensorFlow (with and without XLA), and their ratios;
  2. nodeflow's step time against the FLOP limit: conv FLOPs of forward plus backward (input
     gradient only; the weights are frozen) to the deepest layer, over a measured matmul GFLOP/s;
  3. for the faster routes, the wall time to reach the objective value the recipe reaches after
     N steps (the tutorial objective at full size), as a ratio of the recipe's time.
Timings on a shared machine are noisy: medians are printed, and ratios come from one run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# On shared cores, OpenMP threads that spin-wait slow torch down several times (TF's own
# thread pool doesn't spin). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ASSETS = Path(os.environ.get("NODEFLOW_INPUT_DIR") or ROOT.parent / "shared" / "assets")

# The tutorial's layers and weights, shared by both sides (nodes._nst imports no torch).
from nodes.nst._losses import TUTORIAL_CONTENT_LAYERS as CONTENT_LAYERS  # noqa: E402
from nodes.nst._losses import TUTORIAL_CONTENT_WEIGHT as CONTENT_WEIGHT  # noqa: E402
from nodes.nst._losses import TUTORIAL_STYLE_LAYERS as STYLE_LAYERS  # noqa: E402
from nodes.nst._losses import TUTORIAL_STYLE_WEIGHT as STYLE_WEIGHT  # noqa: E402
from nodes.nst._losses import TUTORIAL_TV_WEIGHT as TV_WEIGHT  # noqa: E402


def load(name: str, max_side: int) -> np.ndarray:
    from PIL import Image

    from nodes._shared.pixels import fit_max_side, from_pil
    with Image.open(ASSETS / name) as im:
        return fit_max_side(from_pil(im.convert("RGB")), max_side)


def vgg16_state() -> dict:
    from nodes.nst import _vgg_weights
    state, _ = _vgg_weights.vgg16_weights(None)
    return state


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
        style = {n: self.gram_matrix(o) for n, o in zip(STYLE_LAYERS, outs[:len(STYLE_LAYERS)])}
        content = {n: o for n, o in zip(CONTENT_LAYERS, outs[len(STYLE_LAYERS):])}
        return {"style": style, "content": content}

    def loss(self, outputs):
        tf = self.tf
        s = tf.add_n([tf.reduce_mean((outputs["style"][n] - self.style_targets[n]) ** 2) for n in STYLE_LAYERS])
        c = tf.add_n([tf.reduce_mean((outputs["content"][n] - self.content_targets[n]) ** 2)
                      for n in CONTENT_LAYERS])
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

def nodeflow_terms(content: np.ndarray, style: np.ndarray) -> list:
    """The tutorial's three terms, as the StyleLoss, ContentLoss and TVLoss nodes build them."""
    from nodes.nst import _losses, _vgg_models, _vgg_net
    module, where = _vgg_models.load_source("vgg16", None, "cpu")
    vgg = _vgg_net.VGG(_vgg_net.SOURCES["vgg16"], module, where, "cpu", "vgg16")
    return [_losses.LossTerm("style", STYLE_WEIGHT, list(STYLE_LAYERS), vgg, style),
            _losses.LossTerm("content", CONTENT_WEIGHT, list(CONTENT_LAYERS), vgg, content, resize_to_input=True),
            _losses.LossTerm("tv", TV_WEIGHT)]


def conv_flops(size: tuple[int, int], deepest: str = "block5_conv2", arch: str = "vgg16") -> float:
    """Forward conv FLOPs (2 per multiply-add) up to and including `deepest`."""
    from nodes.nst import _vgg_net
    h, w = size
    total = 0.0
    for name, (cout, cin) in _vgg_net.conv_shapes(arch).items():
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
    return 2 * n ** 3 / statistics.median(times) / 1e9


def time_steps(steps: dict, n: int, warmup: int = 2) -> dict:
    """{name: (median seconds per step, the objective at the last step)}. The contenders take
    turns, one step each per round, so a burst of load on a shared machine hits them alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {k: [] for k in steps}
    values = {}
    for _ in range(n):
        for k, step in steps.items():
            t = time.perf_counter()
            values[k] = step()
            times[k].append(time.perf_counter() - t)
    return {k: (statistics.median(times[k]), float(np.asarray(values[k]).reshape(-1)[0])) for k in steps}


def nodeflow_step_fn(content, style, precision: str = "float32"):
    """One AdamOptimize step (the same code the node runs), as a callable."""
    import torch

    from nodes.nst import _objective, _optimizers, _tensors
    terms = nodeflow_terms(content, style)
    objective = _objective.Objective(terms, content.shape[:2], "cpu", precision=precision)
    x = _tensors.image_tensor(content, "cpu").requires_grad_(True)
    opt = _optimizers.KerasAdam(x, 0.02, 0.99, 0.999, 0.1)

    def step():
        total, _ = objective(x)
        grad, = torch.autograd.grad(total, x)
        opt.step(grad)
        with torch.no_grad():
            x.clamp_(0, 1)
        return total.detach()
    return step


def nodeflow_tf_step_fn(content, style, jit_compile: bool = False):
    """One AdamOptimize step on TensorFlow (the train step the node runs), as a callable
    that waits for its result, as the node does every step."""
    import tensorflow as tf

    from nodes.nst import _losses, _tf_optimize, _tf_vgg, _vgg_models
    model, where = _vgg_models.load_source("vgg16", None, "cpu", framework="tensorflow")
    vgg = _tf_vgg.TFVGG(_tf_vgg.TF_SOURCES["vgg16"], model, where, "cpu", "vgg16")
    terms = [_losses.feature_term("style", vgg, style, ",".join(STYLE_LAYERS), STYLE_WEIGHT, "cpu"),
             _losses.feature_term("content", vgg, content, ",".join(CONTENT_LAYERS), CONTENT_WEIGHT, "cpu"),
             _losses.LossTerm("tv", TV_WEIGHT)]
    objective = _tf_optimize.TFObjective(terms, content.shape[:2], "cpu")
    image = tf.Variable(content[None])
    step = _tf_optimize.TrainStep(objective, image, _tf_optimize._keras_adam(0.02, 0.99, 0.999, 0.1), jit_compile)
    return lambda: float(tf.reduce_sum(step()).numpy())


# ------------------------------------------------------------------ routes

def run_route(name: str, content, style, budget_steps: int, target: float | None = None):
    """Run one route, until `target` is reached at full size or the budget is spent;
    return (seconds, objective) pairs at full size, and the image."""
    from nodes.nst import _optimizers, _tensors
    full = content.shape[:2]
    name, _, precision = name.partition("@")
    precision = {"": "float32", "bf16": "bfloat16"}[precision]
    hooks = _optimizers.Hooks(stop=lambda total, size: target is not None and tuple(size) == tuple(full)
                       and total <= target)
    start = _tensors.image_tensor(content, "cpu")
    terms = nodeflow_terms(content, style)
    kind, _, rest = name.partition(":")
    if kind == "recipe":
        x, h = _optimizers.run_adam(terms, start, stages=[(full, budget_steps)], lr=0.02, beta1=0.99,
                             beta2=0.999, eps=0.1, precision=precision, hooks=hooks)
    elif kind == "adam":
        sched, lr, lrs = rest.split("|")
        x, h = _optimizers.run_adam(terms, start, stages=_optimizers.parse_schedule(sched, full, budget_steps),
                             lr=float(lr), beta1=0.99, beta2=0.999, eps=0.1, lr_schedule=lrs, precision=precision, hooks=hooks)
    elif kind == "lbfgs":
        sched, _, adam = rest.partition("+adam:")
        stages = _optimizers.parse_schedule(sched, full, budget_steps)
        adam_lr, adam_steps, adam_schedule = (adam.split(":") + ["cosine"])[:3] if adam else (0.05, 0, "cosine")
        x, h = _optimizers.run_lbfgs(terms, start, stages=stages, precision=precision, hooks=hooks,
                              adam_steps_after=int(adam_steps), adam_lr=float(adam_lr),
                              adam_lr_schedule=adam_schedule)
    else:
        raise SystemExit(f"unknown route {name}")
    pts = [(s, v) for s, v, size in zip(h.seconds, h.total, h.size) if tuple(size) == tuple(full)]
    return pts, x


def float32_objective(content, style, image) -> float:
    from nodes.nst import _objective
    _, parts = _objective.Objective(nodeflow_terms(content, style), content.shape[:2], "cpu")(image)
    return sum(parts.values())


def first_time_at_or_below(points, target: float) -> float | None:
    for s, v in points:
        if v <= target:
            return s
    return None


def save_image(folder: str | None, name: str, x) -> None:
    if folder:
        import re

        from nodes._shared.pixels import from_torch, to_pil
        Path(folder).mkdir(parents=True, exist_ok=True)
        to_pil(from_torch(x)).save(Path(folder) / (re.sub(r"[^A-Za-z0-9@._-]", "_", name) + ".png"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,512", help="max sides for the step timings")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per measurement (median)")
    ap.add_argument("--route-size", type=int, default=256, help="max side for the route comparison")
    ap.add_argument("--recipe-steps", type=int, default=1000, help="recipe steps for the route comparison")
    ap.add_argument("--checkpoints", default="300,1000", help="recipe step counts whose objective is the target")
    ap.add_argument("--routes", default="lbfgs:128:30,full:100+adam:0.05:420@bf16;lbfgs:128:60,full:1000@bf16;"
                                        "lbfgs:128:30,full:100+adam:0.05:420",
                    help="';'-separated routes: lbfgs:SCHEDULE, lbfgs:SCHEDULE+adam:LR:STEPS[:constant] "
                         "(then Adam, its lr cosine-decayed to 10%% over STEPS unless constant), or "
                         "adam:SCHEDULE|LR|LR_SCHEDULE; @bf16 for bfloat16 convolutions")
    ap.add_argument("--skip-tf", action="store_true")
    ap.add_argument("--skip-xla", action="store_true", help="don't time the TF route compiled with XLA")
    ap.add_argument("--skip-bf16", action="store_true", help="don't time bfloat16 convolutions (slow on "
                                                             "CPUs without bfloat16 instructions)")
    ap.add_argument("--save", metavar="DIR", help="save each route's final image here")
    ap.add_argument("--skip-routes", action="store_true")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    state = vgg16_state()
    gflops = matmul_gflops()
    print(f"machine: {os.cpu_count()} CPU threads, torch {torch.__version__}, matmul {gflops:.1f} GFLOP/s")

    print("\n1-2. seconds per Adam step (median of %d)" % args.steps)
    tf_step: dict[int, float] = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        # As in the tutorial, both images are loaded at the same max side.
        content, style = load("astronaut.png", size), load("starry_night.jpg", size)
        steps = {"nodeflow": nodeflow_step_fn(content, style)}
        if not args.skip_bf16:
            steps["bfloat16"] = nodeflow_step_fn(content, style, "bfloat16")
        if not args.skip_tf:
            recipe = TFRecipe(state, content, style)
            steps["tf"] = lambda: float(recipe.step().numpy()[0])
            steps["nodeflow tf"] = nodeflow_tf_step_fn(content, style)
            if not args.skip_xla:
                steps["nodeflow tf xla"] = nodeflow_tf_step_fn(content, style, jit_compile=True)
        got = time_steps(steps, args.steps)
        (nf, nf_value), (bf, bf_value) = got["nodeflow"], got.get("bfloat16", (float("nan"), float("nan")))
        line = f"  {size}px: nodeflow {nf:.3f} s (bfloat16 convs: {bf:.3f} s)"
        if not args.skip_tf:
            tf_s, tf_value = got["tf"]
            tf_step[size] = tf_s
            line += (f", TF recipe {tf_s:.3f} s, ratio nodeflow/TF {nf / tf_s:.2f} "
                     f"(bfloat16 {bf / tf_s:.2f}; target <= 0.8)")
        limit = 2 * conv_flops(content.shape[:2]) / (gflops * 1e9)
        line += (f"; FLOP limit (float32) {limit:.3f} s, nodeflow/limit {nf / limit:.2f} "
                 f"(bfloat16 {bf / limit:.2f}; target <= 1.3)")
        print(line, flush=True)
        same = (f"  {size}px: objective at step {args.steps + 2}: nodeflow {nf_value:.5g}, "
                f"bfloat16 {bf_value:.5g}")
        if not args.skip_tf:
            same += f", TF {tf_value:.5g} (relative difference {abs(nf_value - tf_value) / tf_value:.1e})"
        print(same, flush=True)
        if not args.skip_tf:
            (ntf, ntf_value) = got["nodeflow tf"]
            line = (f"  {size}px TensorFlow route: AdamOptimize {ntf:.3f} s, TF recipe {tf_s:.3f} s, ratio "
                    f"{ntf / tf_s:.2f} (target <= 1.05); vs the torch route {ntf / nf:.2f}x")
            if "nodeflow tf xla" in got:
                xla, xla_value = got["nodeflow tf xla"]
                line += f"; with XLA {xla:.3f} s ({xla / tf_s:.2f}x the recipe, {xla / ntf:.2f}x without XLA)"
            print(line, flush=True)
            print(f"  {size}px objective at step {args.steps + 2}: AdamOptimize on TF {ntf_value:.5g} "
                  f"(relative difference to the TF recipe {abs(ntf_value - tf_value) / tf_value:.1e})"
                  + (f", with XLA {xla_value:.5g}" if "nodeflow tf xla" in got else ""), flush=True)

    if args.skip_routes:
        return 0
    content, style = load("astronaut.png", args.route_size), load("starry_night.jpg", args.route_size)
    checkpoints = [int(c) for c in args.checkpoints.split(",") if int(c) <= args.recipe_steps]
    print(f"\n3. routes at {args.route_size}px, under the tutorial objective; recipe = AdamOptimize defaults")
    recipe_pts, image = run_route("recipe", content, style, args.recipe_steps)
    save_image(args.save, "recipe", image)
    targets = {n: (recipe_pts[n - 1][1], recipe_pts[n - 1][0]) for n in checkpoints}
    for n, (value, secs) in targets.items():
        print(f"  recipe step {n}: objective {value:.4g} at {secs:.1f} s")
    for route in [r for r in args.routes.split(";") if r]:
        pts, image = run_route(route, content, style, args.recipe_steps,
                               target=min(v for v, _ in targets.values()))
        save_image(args.save, route, image)
        if route.endswith("@bf16"):
            # A bfloat16 route stops on its own (bfloat16) objective: check the image in float32.
            print(f"  {route}: final image, float32 objective {float32_objective(content, style, image):.5g} "
                  f"(the route's own {pts[-1][1]:.5g})", flush=True)
        for n, (value, secs) in targets.items():
            t = first_time_at_or_below(pts, value)
            if t is None:
                got = f"not reached (best {min(v for _, v in pts):.4g} in {pts[-1][0]:.1f} s)"
            else:
                got = f"{t:.1f} s, {t / secs:.2f}x nodeflow's recipe time"
                if args.route_size in tf_step:
                    got += f", {t / (n * tf_step[args.route_size]):.2f}x the TF recipe's ({n} x {tf_step[args.route_size]:.3f} s)"
            print(f"  {route}: recipe's step-{n} objective {value:.4g}: {got}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
