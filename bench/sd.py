"""Benchmark: SDImg2Img through the engine vs a bare diffusers img2img call.

Both run the tiny random SD pipeline of tests/sd_fixture.py (no real weights here),
same image size, steps, strength, guidance and seeds, interleaved in one process so
machine noise hits both alike. Target: node/bare median <= 1.03, and exactly one
pipeline load however many runs.

    .venv/bin/python bench/sd.py [--size 64] [--steps 4] [--strength 0.5] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--strength", type=float, default=0.5)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import numpy as np
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline
    from sd_fixture import build_tiny_pipeline

    from nodeflow.context import Settings
    from nodeflow.executor import Executor
    from nodeflow.graph import parse_graph
    from nodeflow.plan import build_plan
    from nodes._shared.pixels import fit_max_side, from_pil, to_torch
    from nodes.sd import _pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    assets = ROOT.parent / "shared" / "assets"
    tmp = Path(tempfile.mkdtemp(prefix="nodeflow-bench-sd-"))
    folder = build_tiny_pipeline(tmp / "tiny-sd")

    from PIL import Image

    with Image.open(assets / "astronaut.png") as im:
        image = fit_max_side(from_pil(im.convert("RGB")), args.size)

    bare = StableDiffusionImg2ImgPipeline.from_pretrained(
        folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    bare.set_progress_bar_config(disable=True)

    def run_bare(seed: int) -> np.ndarray:
        out = bare(
            prompt="Van Gogh style",
            image=to_torch(image),
            strength=args.strength,
            guidance_scale=args.guidance,
            num_inference_steps=args.steps,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        )
        return out.images[0]

    graph = {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": args.size}},
            "sd": {
                "type": "SDImg2Img",
                "inputs": {
                    "image": {"from": "load.image"},
                    "prompt": "Van Gogh style",
                    "model": str(folder),
                    "steps": args.steps,
                    "strength": args.strength,
                    "guidance_scale": args.guidance,
                    "seed": 0,
                },
            },
            "save": {"type": "Save", "inputs": {"image": {"from": "sd.image"}}},
        }
    }
    settings = Settings(input_dir=assets, output_dir=tmp / "out")
    executor = Executor()  # one executor, as in the HTTP server: LoadImage is answered from memory

    def run_node(seed: int) -> np.ndarray:
        graph["nodes"]["sd"]["inputs"]["seed"] = seed  # a new key each time, so the node really runs
        result = executor.run(build_plan(parse_graph(graph), settings, only=["sd"]))
        assert result.status == "succeeded", result.error
        return result.values["sd"]["image"]

    t0 = time.perf_counter()
    run_node(10_000)
    first = time.perf_counter() - t0
    run_bare(10_000)  # warm the bare pipeline too
    same = np.abs(run_node(10_001) - run_bare(10_001)).max()

    node_t, bare_t = [], []
    for i in range(args.repeats):
        for fn, times in (
            ((run_node, node_t), (run_bare, bare_t)) if i % 2 else ((run_bare, bare_t), (run_node, node_t))
        ):
            t = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t)

    n_med, b_med = statistics.median(node_t), statistics.median(bare_t)
    print(
        f"tiny SD img2img, {image.shape[1]}x{image.shape[0]}, steps {args.steps} x strength {args.strength} "
        f"= {int(args.steps * args.strength)} run, guidance {args.guidance}, torch threads "
        f"{torch.get_num_threads()}, {args.repeats} interleaved repeats"
    )
    print(f"  first node run (load + run): {first:.3f} s")
    print(f"  SDImg2Img (engine run) median {n_med * 1000:.1f} ms  (min {min(node_t) * 1000:.1f})")
    print(f"  bare diffusers call    median {b_med * 1000:.1f} ms  (min {min(bare_t) * 1000:.1f})")
    paired = statistics.median(n / b for n, b in zip(node_t, bare_t, strict=False))
    print(
        f"  ratio node/bare: of medians {n_med / b_med:.3f}, median of paired runs {paired:.3f}, "
        f"of minima {min(node_t) / min(bare_t):.3f}  (target <= 1.03)"
    )
    print(f"  pipeline loads over {args.repeats + 2} node runs: {_pipeline.PIPELINES.loads} (target 1)")
    print(f"  max |node - bare| pixel difference, same seed: {same:.2e}")
    return 0 if _pipeline.PIPELINES.loads == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
