"""CLI start-up and cached re-run, against bare interpreter start-up in the same run.

    python bench/cli_startup.py [--repeat 7]

Targets (issue 2): `nodeflow --help` under 0.5 s; a fully cached re-run of
graphs/edges.json under 1.5 s for the whole process.
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


def median_seconds(cmd: list[str], repeat: int, env: dict) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NODEFLOW_CACHE_DIR=f"{tmp}/cache", NODEFLOW_OUTPUT_DIR=f"{tmp}/out",
                   NODEFLOW_INPUT_DIR=str(ASSETS))
        py = sys.executable
        run = [py, "-m", "nodeflow", "run", "graphs/edges.json", "-q"]
        subprocess.run(run, cwd=ROOT, env=env, check=True, capture_output=True)  # fill the cache
        rows = {
            "python -c pass (baseline)": median_seconds([py, "-c", "pass"], args.repeat, env),
            "python -c 'import numpy, PIL.Image'": median_seconds([py, "-c", "import numpy, PIL.Image"], args.repeat, env),
            "nodeflow --help": median_seconds([py, "-m", "nodeflow", "--help"], args.repeat, env),
            "nodeflow run edges.json (all cached)": median_seconds(run, args.repeat, env),
        }
    base = rows["python -c pass (baseline)"]
    print(f"{'command':<42} {'median s':>9} {'x baseline':>11}")
    for name, seconds in rows.items():
        print(f"{name:<42} {seconds:>9.3f} {seconds / base:>11.2f}")


if __name__ == "__main__":
    main()
