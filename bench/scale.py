"""Scale-out benchmark: nodeflow serve --ray on a two-node Ray cluster on this machine.

    python bench/scale.py [--jobs 6] [--small 10] [--deaths 3]      (as root)

It re-runs itself inside a loopback-only network namespace (as tests/test_ray.py
does), starts a cluster of two nodes with one CPU each, and measures, in one run:
  1. throughput: jobs per minute of graphs/nst_quick.json (each job a different
     TV weight, so the optimisation runs every time) with --workers 1 (the baseline)
     and --workers 2; the first job of each server warms its actors up and is not timed;
  2. per-job overhead: latency (created -> finished, the server's clock) of a small
     graph run one after another on the in-process worker (the baseline) and on a warm
     Ray worker;
  3. recovery: seconds from kill -9 of the actor running a job to that job running
     again on another actor, with an idle actor ready (--workers 2) and with one to
     start (--workers 1).
Medians and ratios. Timings on a shared machine are noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests"), str(ROOT)]

from ray_cluster import LocalCluster, in_namespace, why_no_namespace  # noqa: E402
from server_harness import ASSETS, Server, slow_graph, submit, wait_job  # noqa: E402

INSIDE = "NODEFLOW_BENCH_SCALE_INSIDE"


def nst_job(i: int) -> dict:
    return {
        "graph": json.loads((ROOT / "nodeflow" / "graphs" / "nst_quick.json").read_text()),
        "overrides": {"tv_loss.weight": 30.0 + i / 1000},
    }


def small_job(i: int) -> dict:
    return {
        "graph": {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 64}},
                "hp": {
                    "type": "HighPass",
                    "inputs": {"image": {"from": "load.image"}, "mode": "gaussian", "sigma": round(1.0 + i * 0.001, 4)},
                },
                "save": {"type": "Save", "inputs": {"image": {"from": "hp.image"}, "filename": "small.png"}},
            }
        }
    }


def server(cluster: LocalCluster | None, workers: int, name: str) -> Server:
    data = cluster.temp_dir / name if cluster else Path(tempfile.mkdtemp(prefix="nfbench"))
    (data / "inputs").mkdir(parents=True, exist_ok=True)
    for f in ("astronaut.png", "starry_night.jpg"):
        shutil.copy(ASSETS / f, data / "inputs" / f)
    args = ["--workers", str(workers)] + (["--ray", cluster.address] if cluster else [])
    env = {"NODEFLOW_RAY_NODE_IP": "127.0.0.1", "NODEFLOW_CACHE_DIR": str(data / "cache")}
    return Server(data, *args, env=env).start(timeout=240)


def run(c, body: dict, timeout: float = 900) -> dict:
    job = wait_job(c, submit(c, body["graph"], overrides=body.get("overrides", {})), timeout=timeout)
    assert job["status"] == "succeeded", job
    return job


def throughput(cluster: LocalCluster, workers: int, jobs: int) -> float:
    srv = server(cluster, workers, f"throughput{workers}")
    try:
        with srv.client() as c:
            # Warm every actor up (start, load the model): jobs at once, one per worker.
            for j in [submit(c, b["graph"], overrides=b["overrides"]) for b in map(nst_job, range(-workers, 0))]:
                wait_job(c, j, timeout=1800)
            # Other TV weights than any run before: no job is a cache hit.
            first = 1000 * workers
            t0 = time.monotonic()
            ids = [submit(c, b["graph"], overrides=b["overrides"]) for b in map(nst_job, range(first, first + jobs))]
            done = [wait_job(c, j, timeout=1800) for j in ids]
            seconds = time.monotonic() - t0
            assert all(j["status"] == "succeeded" for j in done), done
            if workers > 1:
                assert len({j["worker"]["ray_node_id"] for j in done}) == workers
            return jobs / seconds * 60
    finally:
        srv.stop()


def latencies(cluster: LocalCluster | None, n: int) -> list[float]:
    srv = server(cluster, 1, "small-ray" if cluster else "small-local")
    try:
        with srv.client() as c:
            run(c, small_job(-1))  # warm-up: actor start, first imports
            out = []
            for i in range(n):
                job = run(c, small_job(i))
                out.append(job["finished"] - job["created"])
            return out
    finally:
        srv.stop()


def recovery(cluster: LocalCluster, workers: int, deaths: int) -> list[float]:
    srv = server(cluster, workers, f"recovery{workers}")
    try:
        with srv.client() as c:
            out = []
            for i in range(deaths):
                job = submit(c, slow_graph("astronaut.png", steps=100 + i, delay=0.1))
                if workers > 1:  # a short job beside it: the second actor is up, and idle when the first dies
                    wait_job(c, submit(c, slow_graph("astronaut.png", steps=5 + i, delay=0.1)), timeout=300)
                deadline = time.monotonic() + 300
                while True:
                    j = c.get(f"/jobs/{job}").json()
                    if j["status"] == "running" and j["worker"] and (j["nodes"].get("slow") or {}).get("progress"):
                        break
                    assert time.monotonic() < deadline, j
                    time.sleep(0.05)
                pid = j["worker"]["pid"]
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                while True:
                    j = c.get(f"/jobs/{job}").json()
                    if j["status"] == "running" and j["worker"] and j["worker"]["pid"] != pid:
                        out.append(time.monotonic() - killed)
                        break
                    assert time.monotonic() < killed + 300, j
                    time.sleep(0.01)
                c.post(f"/jobs/{job}/cancel")
                wait_job(c, job, timeout=120)
            return out
    finally:
        srv.stop()


def inside(args: argparse.Namespace) -> int:
    cluster = LocalCluster(nodes=2)
    try:
        t0 = time.monotonic()
        cluster.start()
        print(f"cluster of 2 nodes (1 CPU each) started in {time.monotonic() - t0:.1f} s", flush=True)
        local = latencies(None, args.small)
        remote = latencies(cluster, args.small)
        one = throughput(cluster, 1, args.jobs)
        two = throughput(cluster, 2, args.jobs)
        idle = recovery(cluster, 2, args.deaths)
        fresh = recovery(cluster, 1, args.deaths)
    finally:
        cluster.stop()
    med = statistics.median
    print(f"\nnst_quick.json, {args.jobs} jobs after a warm-up job per worker:")
    print(f"  1 Ray worker  (baseline) {one:6.1f} jobs/min")
    print(f"  2 Ray workers            {two:6.1f} jobs/min   ratio {two / one:.2f}x")
    print(f"\nsmall graph (LoadImage 64 px, HighPass, Save), {args.small} jobs one after another, created -> finished:")
    print(f"  in-process worker (baseline) median {med(local) * 1000:7.1f} ms")
    print(
        f"  Ray worker                   median {med(remote) * 1000:7.1f} ms   ratio {med(remote) / med(local):.2f}x, "
        f"overhead {(med(remote) - med(local)) * 1000:.1f} ms per job"
    )
    print(f"\nkill -9 of the actor running a job -> the job running on another actor ({args.deaths} each):")
    print(f"  an idle actor ready (--workers 2)   median {med(idle):6.2f} s  {[round(x, 2) for x in idle]}")
    print(
        f"  a new actor to start (--workers 1)  median {med(fresh):6.2f} s  {[round(x, 2) for x in fresh]}"
        f"   ratio {med(fresh) / med(idle):.1f}x"
    )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=6, help="nst_quick jobs timed per worker count")
    p.add_argument("--small", type=int, default=10, help="small jobs timed per worker kind")
    p.add_argument("--deaths", type=int, default=3, help="workers killed per case")
    args = p.parse_args()
    if os.environ.get(INSIDE):
        return inside(args)
    problem = why_no_namespace()
    if problem:
        print(f"bench/scale.py: {problem}", file=sys.stderr)
        return 2
    argv = in_namespace([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])
    env = dict(os.environ, **{INSIDE: "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    import subprocess

    return subprocess.run(argv, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
