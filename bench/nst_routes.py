"""bench/nst.py, part 3: the bundled style-transfer graphs against the recipe's curve.

For each content/style pair, each graph runs in this process exactly as `nodeflow run` runs it
(its LoadImage paths pointed at the pair), and its optimizer's own loss history (objective and
seconds per evaluation) is compared with the recipe's curve from bench/nst_recipe.py's TSV.
The recipe's seconds per step are measured in this run, so both sides share the machine's
load: the recipe's time to step n is n times that median.
"""

from __future__ import annotations

import time
from pathlib import Path

from _nst_common import (
    ASSETS,
    ROOT,
    curve_path,
    load,
    nodeflow_step_fn,
    read_curve,
    read_regions,
    region_tvs,
    time_steps,
)

from nodes.nst.api import clear_model_cache, result_total


def recipe_step_seconds(content_name: str, style_name: str, size: int, n: int = 3) -> float:
    """Median seconds of one recipe step (AdamOptimize's float32 step) on this pair, now."""
    step = nodeflow_step_fn(load(content_name, size), load(style_name, size))
    return time_steps({"recipe": step}, n, warmup=1)["recipe"][0]


def run_graph(path: Path, content_name: str, style_name: str, size: int, out: Path) -> tuple[dict, object, float]:
    """(the optimizer's history, its image, the graph's wall seconds): the whole graph as the CLI
    runs it, its LoadImage nodes pointed at the pair and at `size`, its files written into `out`,
    with fresh value and model caches (the VGG weights load from disk, as in a new process)."""
    from nodeflow.context import Settings
    from nodeflow.executor import Executor
    from nodeflow.graph import apply_overrides, read_graph_file
    from nodeflow.plan import build_plan

    graph = apply_overrides(
        read_graph_file(path),
        {"content.path": content_name, "style.path": style_name, "content.max_size": size, "style.max_size": size},
    )
    out.mkdir(parents=True, exist_ok=True)
    # The Save nodes, as the CLI runs them, and the optimizer, for its history.
    targets = [nid for nid, node in graph.nodes.items() if node.type == "Save"] + ["optimize"]
    plan = build_plan(graph, Settings(input_dir=ASSETS, output_dir=out), only=targets)
    clear_model_cache()
    t = time.perf_counter()
    result = Executor().run(plan)
    seconds = time.perf_counter() - t
    if result.status != "succeeded":
        raise SystemExit(f"{path.name} on {content_name} x {style_name}: {result.status}: {result.error}")
    return result.values["optimize"]["history"], result.values["optimize"]["image"], seconds


def full_size_points(history: dict) -> list[tuple[float, float]]:
    """(seconds, objective) of the evaluations at the final (full) size."""
    last = history["size"][-1]
    points = zip(history["seconds"], history["total"], history["size"], strict=False)
    return [(s, v) for s, v, size in points if size == last]


def report_pair(
    content_name: str, style_name: str, size: int, graphs: list[Path], checkpoints: list[int], out: Path
) -> None:
    # The recipe's step is timed before and after the graphs: the machine's load may change.
    before = recipe_step_seconds(content_name, style_name, size)
    runs = []
    folder = out / f"{Path(content_name).stem}_{Path(style_name).stem}_{size}"
    for path in graphs:
        history, image, wall = run_graph(path, content_name, style_name, size, folder)
        runs.append((path, history, region_tvs(content_name, image), wall))
    after = recipe_step_seconds(content_name, style_name, size)
    step_s = (before + after) / 2
    curve = read_curve(curve_path(content_name, style_name, size))
    if not curve:
        print(
            f"  {content_name} x {style_name}: no recipe curve; write it with\n"
            f"    .venv/bin/python bench/nst_recipe.py --content {content_name} --style {style_name} --size {size}"
        )
        return
    targets = {n: curve[n - 1]["total"] for n in checkpoints if n <= len(curve)}
    print(
        f"  {content_name} x {style_name} at {size} px: recipe step {step_s:.2f} s in this run (median of 3 "
        f"before the graphs, {before:.2f} s, and after, {after:.2f} s); its curve: {len(curve)} steps, "
        + ", ".join(f"step {n}: {v:.4g}" for n, v in targets.items()),
        flush=True,
    )
    recipe_regions = read_regions(content_name, style_name, size)
    for path, history, regions, wall in runs:
        line = compare(path.name, history, wall, curve, targets, step_s)
        line += compare_regions(regions, recipe_regions, result_point(history)[0], curve)
        print("    " + "; ".join(line), flush=True)


def result_point(history: dict) -> tuple[float, float]:
    """(objective, TV) of the graph's result: its optimizer returns the lowest-objective image
    it evaluated at full size."""
    total = result_total(history)
    i = max(i for i, v in enumerate(history["total"]) if v == total)
    return total, history["terms"]["tv"][i]


def recipe_step_at(curve: list[dict], objective: float) -> int | None:
    """What an objective is worth in recipe steps: the first step where the recipe is as low."""
    return next((i + 1 for i, row in enumerate(curve) if row["total"] <= objective), None)


def compare(name: str, history: dict, wall: float, curve: list[dict], targets: dict, step_s: float) -> list[str]:
    """One graph's run against the recipe's curve, as report phrases."""
    points = full_size_points(history)
    final, final_tv = result_point(history)
    line = [
        f"{name}: objective {final:.4g} after {history['seconds'][-1]:.0f} s of optimizing "
        f"({wall:.0f} s for the whole graph)"
    ]
    for n, value in targets.items():
        t = next((s for s, v in points if v <= value), None)
        line.append(
            f"step-{n} objective: "
            + (
                f"{t:.0f} s = {t / (n * step_s):.2f}x the recipe's {n * step_s:.0f} s"
                if t is not None
                else "not reached"
            )
        )
    worth = recipe_step_at(curve, final)
    if worth is None:
        line.append(f"lower than the curve's last step ({len(curve)})")
        return line
    recipe_s = worth * step_s
    line.append(f"the recipe gets there at step {worth} ({recipe_s:.0f} s: {history['seconds'][-1] / recipe_s:.2f}x)")
    recipe_tv = curve[worth - 1]["tv"]
    line.append(
        f"TV {final_tv:.4g} against the recipe's {recipe_tv:.4g} there ({final_tv / recipe_tv:.2f}x, target <= 1)"
    )
    return line


def compare_regions(
    regions: dict[str, float], recipe_regions: dict[str, list[tuple[int, float]]], final: float, curve: list[dict]
) -> list[str]:
    """Each region's TV in the result against the recipe's image at the same objective
    (interpolated between the images it saved), as report phrases."""
    import numpy as np

    worth = recipe_step_at(curve, final)
    line = []
    for name, tv in regions.items():
        steps, tvs = zip(*recipe_regions[name], strict=False) if name in recipe_regions else ((), ())
        if worth is None or not steps or not steps[0] <= worth <= steps[-1]:
            line.append(f"{name} TV {tv:.3g} (no image of the recipe's near that objective)")
            continue
        recipe_tv = float(np.interp(worth, steps, tvs))
        line.append(f"{name} TV {tv:.3g} against the recipe's {recipe_tv:.3g} at step {worth} ({tv / recipe_tv:.2f}x)")
    return line


def report_routes(
    pairs: list[tuple[str, str]], size: int, graphs: list[str], checkpoints: list[int], out: Path
) -> None:
    print(
        f"\n3. the bundled graphs against the recipe (AdamOptimize's float32 defaults), under the tutorial "
        f"objective; their files go to {out}"
    )
    for content_name, style_name in pairs:
        report_pair(content_name, style_name, size, [ROOT / g for g in graphs], checkpoints, out)
