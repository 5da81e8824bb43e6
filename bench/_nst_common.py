"""What the style-transfer benchmarks share (bench/nst.py, nst_routes.py, nst_recipe.py,
nst_side_by_side.py): where the images are and how they load, the tutorial's objective, the
recipe's step, the timing of steps, and the recipe's curve files. It imports none of them;
they import it, so the imports point one way.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# On shared cores, OpenMP threads that spin-wait slow torch down several times (TF's own
# thread pool doesn't spin). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
ASSETS = Path(os.environ.get("NODEFLOW_INPUT_DIR") or ROOT.parent / "shared" / "assets")

import nodes._shared.torch_device  # noqa: E402,F401  (the allocator setting the nodes run with)
from nodes.nst import api  # noqa: E402

# The tutorial's layers and weights, shared by both sides (importing them loads no torch).
STYLE_LAYERS = api.TUTORIAL_STYLE_LAYERS
CONTENT_LAYERS = api.TUTORIAL_CONTENT_LAYERS
STYLE_WEIGHT = api.TUTORIAL_STYLE_WEIGHT
CONTENT_WEIGHT = api.TUTORIAL_CONTENT_WEIGHT
TV_WEIGHT = api.TUTORIAL_TV_WEIGHT


def load(name: str, max_side: int) -> np.ndarray:
    from PIL import Image

    from nodes._shared.pixels import fit_max_side, from_pil

    with Image.open(ASSETS / name) as im:
        return fit_max_side(from_pil(im.convert("RGB")), max_side)


# ------------------------------------------------------------------ nodeflow's side


def nodeflow_terms(content: np.ndarray, style: np.ndarray, channels_last: bool = True) -> list:
    """The tutorial's three terms, as the StyleLoss, ContentLoss and TVLoss nodes build them;
    channels_last=False runs the VGG stack in the NCHW layout it used before."""
    return api.tutorial_terms(content, style, channels_last=channels_last)


def nodeflow_step_fn(content, style, precision: str = "float32", channels_last: bool = True):
    """One AdamOptimize step (the same code the node runs), as a callable."""
    import torch

    terms = nodeflow_terms(content, style, channels_last)
    objective = api.Objective(terms, content.shape[:2], "cpu", precision=precision)
    x = api.image_tensor(content, "cpu").requires_grad_(True)
    opt = api.KerasAdam(x, 0.02, 0.99, 0.999, 0.1)

    def step():
        total, _ = objective(x)
        (grad,) = torch.autograd.grad(total, x)
        opt.step(grad)
        with torch.no_grad():
            x.clamp_(0, 1)
        return total.detach()

    return step


# ------------------------------------------------------------------ timing


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


# ------------------------------------------------------------------ the recipe's curve files

COLUMNS = ["step", "seconds", "total", "style", "content", "tv"]

# Where noise shows first, as (left, top, side) in fractions of the image's width and height:
# the recipe's images and a route's result are compared there at the same objective.
REGIONS = {"astronaut.png": {"face": (0.332, 0.078, 0.3125)}}


def curve_path(content: str, style: str, size: int) -> Path:
    return BENCH / f"nst_recipe_{Path(content).stem}_{Path(style).stem}_{size}.tsv"


def regions_path(content: str, style: str, size: int) -> Path:
    curve = curve_path(content, style, size)
    return curve.with_name(f"{curve.stem}_regions.tsv")


def read_curve(path: Path) -> list[dict[str, float]]:
    """The rows of a curve file, as numbers; [] when there is none."""
    if not path.exists():
        return []
    with path.open() as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        return [{k: float(v) for k, v in row.items()} for row in rows]


def region_tvs(content: str, image) -> dict[str, float]:
    """{region: the weighted TV inside it} of an H x W x 3 image in 0..1, rounded to 8 bits as a
    saved PNG is, so results and the recipe's saved images are measured alike."""
    a = np.round(np.clip(image, 0, 1) * 255) / 255
    h, w = a.shape[:2]
    found = {}
    for name, (left, top, side) in REGIONS.get(content, {}).items():
        x0, y0 = round(left * w), round(top * h)
        box = a[y0 : y0 + round(side * h), x0 : x0 + round(side * w)]
        found[name] = TV_WEIGHT * float(np.abs(np.diff(box, axis=0)).sum() + np.abs(np.diff(box, axis=1)).sum())
    return found


def write_regions(content: str, style: str, size: int, rows: list[tuple[int, str, float]]) -> Path:
    path = regions_path(content, style, size)
    tmp = path.with_suffix(".tsv.partial")
    tmp.write_text("step\tregion\ttv\n" + "".join(f"{n}\t{name}\t{tv:.6g}\n" for n, name, tv in rows))
    tmp.replace(path)
    return path


def read_regions(content: str, style: str, size: int) -> dict[str, list[tuple[int, float]]]:
    """{region: [(step, tv), ...]} of a curve; {} when there is none."""
    path = regions_path(content, style, size)
    if not path.exists():
        return {}
    found: dict[str, list[tuple[int, float]]] = {}
    with path.open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            found.setdefault(row["region"], []).append((int(row["step"]), float(row["tv"])))
    return found
