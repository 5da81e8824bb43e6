"""CLI start-up, cached re-run and validation, against bare interpreter start-up in the same run.

    python bench/cli_startup.py [--repeat 7] [--before DIR]

Targets (issue 2): `nodeflow --help` under 0.5 s; a fully cached re-run of
graphs/edges.json under 1.5 s for the whole process. Issue 14: `nodeflow validate` of a
style-transfer graph as fast as of an image-only one (no torch, no TensorFlow): the
validate rows are also given as a ratio to validating edges.json. --before DIR times the
validate rows of another checkout too (e.g. a `git worktree` of the previous commit), in
the same run, with PYTHONPATH=DIR.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
# The image-only graph first: the others are compared with it.
VALIDATED = ["edges.json", "nst_starry.json", "hub_starry.json", "sd_vangogh.json"]


def median_seconds(cmd: list[str], repeat: int, env: dict, cwd: Path = ROOT) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--before", metavar="DIR", help="another checkout to time `validate` in")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            NODEFLOW_CACHE_DIR=f"{tmp}/cache",
            NODEFLOW_OUTPUT_DIR=f"{tmp}/out",
            NODEFLOW_INPUT_DIR=str(ASSETS),
        )
        py = sys.executable
        run = [py, "-m", "nodeflow", "run", "graphs/edges.json", "-q"]
        subprocess.run(run, cwd=ROOT, env=env, check=True, capture_output=True)  # fill the cache
        rows = {
            "python -c pass (baseline)": median_seconds([py, "-c", "pass"], args.repeat, env),
            "python -c 'import numpy, PIL.Image'": median_seconds(
                [py, "-c", "import numpy, PIL.Image"], args.repeat, env
            ),
            "nodeflow --help": median_seconds([py, "-m", "nodeflow", "--help"], args.repeat, env),
            "nodeflow run edges.json (all cached)": median_seconds(run, args.repeat, env),
        }
        checkouts = {"": ROOT, **({"before: ": Path(args.before).resolve()} if args.before else {})}
        validate = {}
        for label, tree in checkouts.items():
            tree_env = dict(env, PYTHONPATH=str(tree))
            for graph in VALIDATED:
                cmd = [py, "-m", "nodeflow", "validate", str(tree / "graphs" / graph)]
                # Run from the checkout: `python -m` puts the working directory first on sys.path.
                validate[f"{label}validate {graph}"] = median_seconds(cmd, args.repeat, tree_env, cwd=tree)
    base = rows["python -c pass (baseline)"]
    print(f"{'command':<42} {'median s':>9} {'x baseline':>11}")
    for name, seconds in rows.items():
        print(f"{name:<42} {seconds:>9.3f} {seconds / base:>11.2f}")
    print(f"\n{'command':<42} {'median s':>9} {'x edges':>11}")
    for label in checkouts:
        image_only = validate[f"{label}validate {VALIDATED[0]}"]
        for graph in VALIDATED:
            seconds = validate[f"{label}validate {graph}"]
            print(f"{label + 'validate ' + graph:<42} {seconds:>9.3f} {seconds / image_only:>11.2f}")


if __name__ == "__main__":
    main()
