"""HTTP API benchmark: latency of small graphs submitted by concurrent clients, and
the server's memory over many jobs.

    .venv/bin/python bench/api.py [--clients 10] [--jobs 100] [--rounds 3] [--workers 1]

Starts a real server (python server.py) on a free loopback port with a fresh data
dir, uploads one image, then:
  1. baseline: the same small graph run in this process on an Executor (no HTTP);
  2. 10 jobs from one client, one after another (latency = submit until its
     job_finished event arrives on the job's SSE stream);
  3. `--rounds` times: `--jobs` jobs from `--clients` concurrent clients.
It prints p50/p99 latencies, ratios against the baselines, and the server's RSS
after 10 jobs against after each round (flat means no growth per job).
Timings on a shared machine are noisy: compare the ratios, run it more than once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests")]  # the test helpers, and `support`
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from server_harness import ASSETS, Server, upload  # noqa: E402


def graph(path: str, i: int) -> dict:
    """Small but not a pure cache hit: each job's sigma differs, so HighPass and Save run."""
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": path, "max_size": 64}},
            "hp": {
                "type": "HighPass",
                "inputs": {"image": {"from": "load.image"}, "mode": "gaussian", "sigma": round(1.0 + i * 0.001, 4)},
            },
            "save": {"type": "Save", "inputs": {"image": {"from": "hp.image"}, "filename": f"b{i}.png"}},
        }
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def run_job(client: httpx.Client, g: dict) -> tuple[float, float, str]:
    """(seconds to the 202, seconds until job_finished, status)."""
    t0 = time.perf_counter()
    r = client.post("/jobs", json={"graph": g})
    t_submit = time.perf_counter() - t0
    r.raise_for_status()
    with client.stream("GET", r.json()["events_url"]) as s:
        for line in s.iter_lines():
            if line.startswith("data: ") and '"job_finished"' in line:
                return t_submit, time.perf_counter() - t0, json.loads(line[6:])["status"]
    raise RuntimeError("stream ended without job_finished")


def concurrent(url: str, clients: int, jobs: int, start: int) -> tuple[list[float], list[float], float]:
    submits, totals, errors = [], [], []
    lock = threading.Lock()
    counter = iter(range(start, start + jobs))

    def client_loop():
        with httpx.Client(base_url=url, timeout=300) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                ts, tt, status = run_job(c, graph(NAME, i))
                with lock:
                    submits.append(ts)
                    totals.append(tt)
                    if status != "succeeded":
                        errors.append(status)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} jobs did not succeed: {errors[:3]}")
    return submits, totals, time.perf_counter() - t0


def engine_baseline(path: Path, n: int = 10) -> float:
    from nodeflow.context import Settings
    from nodeflow.executor import Executor
    from nodeflow.graph import parse_graph
    from nodeflow.plan import build_plan

    ex = Executor()
    times = []
    with tempfile.TemporaryDirectory() as out:
        settings = Settings(input_dir=path.parent, output_dir=Path(out))
        for i in range(n):
            t0 = time.perf_counter()
            plan = build_plan(parse_graph(graph(path.name, 10_000 + i)), settings)
            assert ex.run(plan).status == "succeeded"
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


NAME = ""


def main() -> int:
    global NAME
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--memory-cache-mb", type=float, default=2, help="the server's value cache budget")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(
            Path(tmp) / "data",
            "--workers",
            str(args.workers),
            env={
                "NODEFLOW_HISTORY_LIMIT": "100000",
                # a small, full value cache: what grows after that is not the cache
                "NODEFLOW_MEMORY_CACHE_MB": str(args.memory_cache_mb),
            },
        ).start()
        try:
            with srv.client() as c:
                NAME = upload(c)
                engine = engine_baseline(ASSETS / "astronaut.png")
                seq = [run_job(c, graph(NAME, i))[1] for i in range(10)]
                cache10 = c.get("/health").json()["memory_cache"]
            rss10 = rss_kib(srv.proc.pid)
            seq_p50 = statistics.median(seq)
            print(f"server: {args.workers} worker(s); small graph = LoadImage(64 px) -> HighPass -> Save")
            print(f"baseline, in-process engine run:     p50 {engine * 1000:7.1f} ms")
            print(
                f"one client, 10 jobs in sequence:     p50 {seq_p50 * 1000:7.1f} ms   "
                f"(x{seq_p50 / engine:.2f} the in-process run: HTTP + queue + SSE overhead)"
            )
            print(
                f"RSS after 10 jobs: {rss10 / 1024:.1f} MiB  (value cache {cache10['bytes'] >> 10} KiB "
                f"of {cache10['budget_bytes'] >> 10} KiB)"
            )
            rss_prev, done_prev = rss10, 10
            done = 10
            for rnd in range(args.rounds):
                submits, totals, wall = concurrent(srv.url, args.clients, args.jobs, start=1000 * (rnd + 1))
                done += args.jobs
                rss = rss_kib(srv.proc.pid)
                cache = httpx.get(srv.url + "/health").json()["memory_cache"]
                p50, p99 = pct(totals, 50), pct(totals, 99)
                print(
                    f"round {rnd + 1}: {args.jobs} jobs from {args.clients} clients in {wall:.2f} s "
                    f"({args.jobs / wall:.1f} jobs/s)"
                )
                print(
                    f"  submit -> done:  p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms   "
                    f"(p50 x{p50 / seq_p50:.1f} the sequential p50: jobs wait in the queue)"
                )
                print(
                    f"  submit -> 202:   p50 {pct(submits, 50) * 1000:7.1f} ms  p99 {pct(submits, 99) * 1000:7.1f} ms"
                )
                print(
                    f"  RSS after {done} jobs: {rss / 1024:.1f} MiB  (x{rss / rss10:.3f} of after 10 jobs; "
                    f"{(rss - rss_prev) / (done - done_prev):+.1f} KiB per job this round; "
                    f"value cache {cache['bytes'] >> 10} KiB, full at {cache['budget_bytes'] >> 10} KiB)"
                )
                rss_prev, done_prev = rss, done
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
