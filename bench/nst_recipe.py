"""The tutorial recipe's objective curve, computed once and kept as a TSV under bench/.

At 512 px the recipe's 1000 steps take most of an hour on 2 CPU cores, so bench/nst.py reads
the curve from here instead of recomputing it; it times a few recipe steps in its own run to
turn step counts into seconds. Write (or extend) a curve:

    .venv/bin/python bench/nst_recipe.py --content astronaut.png --style starry_night.jpg --size 512 --steps 1000

It also writes, beside the curve, the TV inside _nst_common.REGIONS (the astronaut's face) every 100 steps;
`--regions-from DIR` writes that file from the images an earlier `--images DIR` run saved.

The recipe is AdamOptimize's defaults (Keras Adam lr 0.02, beta1 0.99, epsilon 0.1, clipped to
[0, 1]) in float32 from the content image, under the tutorial's objective on the offline VGG16.
Row n is the objective of the image after n - 1 updates: the value the recipe reports at step n.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from _nst_common import (  # noqa: E402
    COLUMNS,
    curve_path,
    load,
    nodeflow_terms,
    region_tvs,
    write_regions,
)


def regions_from_images(content: str, style: str, size: int, folder: Path) -> Path:
    """The region file of a curve from the images compute_curve saved (<curve>_step<N>.png)."""
    import numpy as np
    from PIL import Image

    rows = []
    saved = {
        int(png.stem.rsplit("step", 1)[1]): png
        for png in folder.glob(f"{curve_path(content, style, size).stem}_step*.png")
    }
    for step, png in sorted(saved.items()):
        with Image.open(png) as im:
            image = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
        rows += [(step, name, tv) for name, tv in region_tvs(content, image).items()]
    if not rows:
        raise SystemExit(f"no regions: {content} has none in REGIONS, or {folder} has no saved images of this curve")
    return write_regions(content, style, size, rows)


def compute_curve(
    content_name: str,
    style_name: str,
    size: int,
    steps: int,
    images: Path | None = None,
    every: int = 100,
    threads: int | None = None,
) -> Path:
    """Run the recipe for `steps` steps, writing each row as it comes (the file is usable
    while it grows); save the image every `every` steps into `images`, if given."""
    import torch

    from nodes._shared.pixels import from_torch, to_pil
    from nodes.nst import api

    torch.set_num_threads(threads or os.cpu_count() or 1)
    content, style = load(content_name, size), load(style_name, size)
    path = curve_path(content_name, style_name, size)
    tmp = path.with_suffix(".tsv.partial")
    out = tmp.open("w")
    out.write(
        f"# recipe curve: {content_name} x {style_name}, max side {size} px, "
        f"{content.shape[1]}x{content.shape[0]}, AdamOptimize defaults, float32, vgg16, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; seconds are wall time "
        f"on a shared machine\n"
    )
    out.write("\t".join(COLUMNS) + "\n")
    step = 0

    def evaluated(total, parts, _size):
        nonlocal step
        step += 1
        out.write(
            f"{step}\t{time.perf_counter() - started:.2f}\t{total:.6g}\t{parts['style']:.6g}\t"
            f"{parts['content']:.6g}\t{parts['tv']:.6g}\n"
        )
        out.flush()

    region_rows = []

    def preview(image, i):
        pixels = from_torch(image)
        region_rows.extend((i, name, tv) for name, tv in region_tvs(content_name, pixels).items())
        if images:
            images.mkdir(parents=True, exist_ok=True)
            to_pil(pixels).save(images / f"{path.stem}_step{i}.png")

    hooks = api.Hooks(evaluated=evaluated, preview=preview, preview_every=every)
    started = time.perf_counter()
    api.run_adam(
        nodeflow_terms(content, style),
        api.image_tensor(content, "cpu"),
        stages=[(content.shape[:2], steps)],
        lr=0.02,
        beta1=0.99,
        beta2=0.999,
        eps=0.1,
        hooks=hooks,
    )
    out.close()
    tmp.replace(path)
    if region_rows:
        write_regions(content_name, style_name, size, region_rows)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", default="astronaut.png")
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--images", type=Path, help="save the recipe's image every 100 steps here")
    ap.add_argument("--threads", type=int, help="torch threads (default: all)")
    ap.add_argument(
        "--regions-from",
        type=Path,
        metavar="DIR",
        help="don't run the recipe: write the "
        "region file of its curve from the images an earlier --images run saved in DIR",
    )
    args = ap.parse_args()
    if args.regions_from:
        print(regions_from_images(args.content, args.style, args.size, args.regions_from))
        return 0
    print(compute_curve(args.content, args.style, args.size, args.steps, args.images, threads=args.threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
