"""Regenerate docs/img/nst_side_by_side.jpg: the content, the main job's result, the HQ route's
result and the recipe's 1000-step result, each labelled with its value of the tutorial
objective (computed here, on the image as saved, at 512 px) and its wall time, laid out by the
Grid node's own code.

    nodeflow run graphs/nst_starry.json --out /tmp/main
    nodeflow run graphs/nst_starry_hq.json --out /tmp/hq
    .venv/bin/python bench/nst_recipe.py --images /tmp/recipe     # the recipe's images
    .venv/bin/python bench/nst_side_by_side.py --main /tmp/main/nst_output.png \\
        --hq /tmp/hq/nst_hq_output.png --recipe /tmp/recipe/nst_recipe_astronaut_starry_night_512_step1000.png

Without an hour for the recipe, --recipe can be the recipe's cell cut from an earlier sheet
(docs/img/nst_side_by_side.jpg, the fourth 448 px cell) with --recipe-label repeating that sheet's label.

The graphs' wall times are their optimizers' own (the PNG's nodeflow:metadata); the recipe's
is 1000 times its step time (--recipe-step-seconds, from bench/nst.py's table, or else the
curve's own wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from _nst_common import ASSETS, curve_path, load, nodeflow_terms, read_curve  # noqa: E402


def objective_of(path: Path, content, style) -> float:
    import torch
    from PIL import Image

    from nodes._shared.pixels import fit_max_side, from_pil
    from nodes.nst import api

    with Image.open(path) as im:
        image = fit_max_side(from_pil(im.convert("RGB")), max(content.shape[:2]))
    with torch.no_grad():
        _, parts = api.Objective(nodeflow_terms(content, style), content.shape[:2], "cpu")(
            api.image_tensor(image, "cpu")
        )
    return sum(parts.values())


def optimizer_seconds(path: Path) -> float:
    from PIL import Image

    with Image.open(path) as im:
        return float(json.loads(im.text["nodeflow:metadata"])["seconds"])


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--main", type=Path, required=True)
    ap.add_argument("--hq", type=Path, required=True)
    ap.add_argument("--recipe", type=Path, required=True)
    ap.add_argument("--recipe-step-seconds", type=float)
    ap.add_argument(
        "--recipe-label",
        help="the recipe cell's label as given, for a recipe image cut from an "
        "earlier sheet (a resized JPEG can't be scored), e.g. the earlier sheet's own label",
    )
    ap.add_argument("--out", type=Path, default=BENCH.parent / "docs" / "img" / "nst_side_by_side.jpg")
    args = ap.parse_args()

    from PIL import Image

    from nodes._shared.pixels import from_pil, to_pil
    from nodes.image.grid import Grid

    content, style = load("astronaut.png", 512), load("starry_night.jpg", 512)
    curve = read_curve(curve_path("astronaut.png", "starry_night.jpg", 512))
    recipe_seconds = 1000 * args.recipe_step_seconds if args.recipe_step_seconds else curve[999]["seconds"]
    cells = [(ASSETS / "astronaut.png", "content (astronaut.png)")]
    for path, name, seconds in (
        (args.main, "nst_starry.json", optimizer_seconds(args.main)),
        (args.hq, "nst_starry_hq.json", optimizer_seconds(args.hq)),
        (args.recipe, "recipe, 1000 Adam steps", recipe_seconds),
    ):
        if path == args.recipe and args.recipe_label:
            cells.append((path, args.recipe_label))
            continue
        cells.append((path, f"{name}: {objective_of(path, content, style):.3g}, {minutes(seconds)}"))
    images = []
    for path, _ in cells:
        with Image.open(path) as im:
            images.append(from_pil(im.convert("RGB")))
    slots = {f"image{i}": None for i in range(1, 9)} | {f"label{i}": "" for i in range(1, 9)}
    slots |= {f"image{i}": im for i, im in enumerate(images, 1)} | {
        f"label{i}": label for i, (_, label) in enumerate(cells, 1)
    }
    sheet = Grid.run(None, columns=4, cell_height=448, padding=8, background="white", **slots)[
        "image"
    ]  # self is unused
    args.out.parent.mkdir(parents=True, exist_ok=True)
    to_pil(sheet).save(args.out, quality=88)
    print(args.out, [label for _, label in cells])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
