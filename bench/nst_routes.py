"""bench/nst.py, part 3: the bundled style-transfer graphs against the recipe's curve.

For each content/style pair, each graph runs in this process exactly as `nodeflow run` runs it
(its LoadImage paths pointed at the pair), and its optimizer's own loss history (objective and
seconds per evaluation) is compared with the recipe's curve from bench/nst_recipe.py's TSV.
The recipe's seconds per step are measured in this run, so both sides share the machine's
load: the recipe's time to step n is n times that median.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from nst import ASSETS, ROOT, load, nodeflow_step_fn
from nst_recipe import curve_path, read_curve


def recipe_step_seconds(content_name: str, style_name: str, size: int, n: int = 3) -> float:
    """Median seconds of one recipe step (AdamOptimize's float32 step) on this pair, now."""
    step = nodeflow_step_fn(load(content_name, size), load(style_name, size))
    step()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_graph(path: Path, content_name: str, style_name: str) -> tuple[dict, float]:
    """(the optimizer's history, the graph's wall seconds): the graph as the CLI runs it, up to
    its optimizer, with a fresh value cache (the VGG model stays loaded in the process)."""
    from nodeflow.context import Settings
    from nodeflow.executor import Executor
    from nodeflow.graph import apply_overrides, read_graph_file
    from nodeflow.plan import build_plan
    graph = apply_overrides(read_graph_file(path), {"content.path": content_name, "style.path": style_name})
    with tempfile.TemporaryDirectory() as out:
        plan = build_plan(graph, Settings(input_dir=ASSETS, output_dir=Path(out)), only=["optimize"])
        t = time.perf_counter()
        result = Executor().run(plan)
        seconds = time.perf_counter() - t
    if result.status != "succeeded":
        raise SystemExit(f"{path.name} on {content_name} x {style_name}: {result.status}: {result.error}")
    return result.values["optimize"]["history"], seconds


def recipe_tv_at(curve: list[dict], objective: float) -> float | None:
    """The recipe's TV term at the first step where its objective is at or below `objective`."""
    return next((row["tv"] for row in curve if row["total"] <= objective), None)


def full_size_points(history: dict) -> list[tuple[float, float]]:
    """(seconds, objective) of the evaluations at the final (full) size."""
    last = history["size"][-1]
    return [(s, v) for s, v, size in zip(history["seconds"], history["total"], history["size"]) if size == last]


def report_pair(content_name: str, style_name: str, size: int, graphs: list[Path], checkpoints: list[int]) -> None:
    curve = read_curve(curve_path(content_name, style_name, size))
    if not curve:
        print(f"  {content_name} x {style_name}: no recipe curve; write it with\n"
              f"    .venv/bin/python bench/nst_recipe.py --content {content_name} --style {style_name} --size {size}")
        return
    step_s = recipe_step_seconds(content_name, style_name, size)
    targets = {n: curve[n - 1]["total"] for n in checkpoints if n <= len(curve)}
    print(f"  {content_name} x {style_name}: recipe step {step_s:.2f} s in this run (median of 3); curve of "
          f"{len(curve)} steps; " + ", ".join(f"step {n}: {v:.4g}" for n, v in targets.items()), flush=True)
    for path in graphs:
        history, wall = run_graph(path, content_name, style_name)
        points = full_size_points(history)
        final, final_tv = history["total"][-1], history["terms"]["tv"][-1]
        reached = [n for n, v in targets.items() if final <= v]
        line = [f"    {path.name}: objective {final:.4g} after {history['seconds'][-1]:.0f} s of optimizing "
                f"({wall:.0f} s for the graph)"]
        for n, value in targets.items():
            t = next((s for s, v in points if v <= value), None)
            line.append(f"step-{n} objective: " + (f"{t:.0f} s = {t / (n * step_s):.2f}x the recipe's {n * step_s:.0f} s"
                                                    if t is not None else "not reached"))
        # Recipe steps the route is worth: the last recipe step still above the route's final objective.
        worth = next((i for i, row in enumerate(curve) if row["total"] <= final), None)
        line.append(f"= the recipe's step {worth + 1}" if worth is not None else f"beyond the curve's {len(curve)} steps")
        recipe_tv = recipe_tv_at(curve, final) if reached or worth is not None else None
        if recipe_tv:
            line.append(f"TV {final_tv:.4g} vs the recipe's {recipe_tv:.4g} at that objective "
                        f"({final_tv / recipe_tv:.2f}x, target <= 1)")
        print("; ".join(line), flush=True)


def report_routes(pairs: list[tuple[str, str]], size: int, graphs: list[str], checkpoints: list[int]) -> None:
    print(f"\n3. the bundled graphs at {size} px against the recipe (AdamOptimize's float32 defaults), "
          f"under the tutorial objective")
    for content_name, style_name in pairs:
        report_pair(content_name, style_name, size, [ROOT / g for g in graphs], checkpoints)
