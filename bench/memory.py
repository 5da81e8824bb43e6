"""Server memory after many small jobs: RSS of a real server after `--jobs` jobs whose values
all differ (so each one fills the value cache further), with the memory-cache settings as they
were (a fixed 2 GiB budget, no memory-pressure floor, no trim after each run) against today's
defaults (a budget sized from the machine's memory, capped at 1 GiB; a floor of available memory
under which the cache gives memory back; freed memory returned to the system after each run).

    .venv/bin/python bench/memory.py [--jobs 300]

Each job: LoadImage(starry_night.jpg, max_size 500+i) -> HighPass -> Save, one after another
on one worker. Prints RSS after 10 jobs and after all of them, for both settings, and the
ratio of the two final figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests")]
sys.path.insert(0, str(ROOT))

from server_harness import Server, upload  # noqa: E402

BEFORE = {"NODEFLOW_MEMORY_CACHE_MB": "2048", "NODEFLOW_MEMORY_FLOOR_MB": "0", "NODEFLOW_TRIM": "0"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def graph(name: str, i: int) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": name, "max_size": 500 + i}},
            "hp": {"type": "HighPass", "inputs": {"image": {"from": "load.image"}, "mode": "gaussian", "sigma": 2.0}},
            "save": {"type": "Save", "inputs": {"image": {"from": "hp.image"}, "filename": f"m{i}.png"}},
        }
    }


def run(label: str, env: dict, jobs: int) -> tuple[float, float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "data", env={"NODEFLOW_HISTORY_LIMIT": "100000", **env}).start()
        try:
            with srv.client() as c:
                name = upload(c, "starry_night.jpg")
                rss10 = 0.0
                t0 = time.perf_counter()
                for i in range(jobs):
                    job_id = c.post("/jobs", json={"graph": graph(name, i)}).json()["job_id"]
                    while c.get(f"/jobs/{job_id}").json()["status"] not in ("succeeded", "failed", "cancelled"):
                        time.sleep(0.02)
                    if i == 9:
                        rss10 = rss_mib(srv.proc.pid)
                cache = c.get("/health").json()["memory_cache"]
                rss = rss_mib(srv.proc.pid)
            seconds = time.perf_counter() - t0
        finally:
            srv.stop()
    print(
        f"{label:<8} RSS after 10 jobs {rss10:7.0f} MiB, after {jobs} jobs {rss:7.0f} MiB; value cache "
        f"{cache['bytes'] / 2**20:6.0f} MiB of a {cache['budget_bytes'] / 2**20:.0f} MiB budget ({seconds:.0f} s)"
    )
    return rss10, rss, cache


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=300)
    args = p.parse_args()
    _, before, _ = run("before", BEFORE, args.jobs)
    _, after, _ = run("after", {}, args.jobs)
    print(f"RSS after {args.jobs} jobs: x{after / before:.2f} of the old settings ({before - after:.0f} MiB less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
