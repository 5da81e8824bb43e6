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
     start (--workers 1);
  4. node loss: seconds from kill -9 of a whole Ray node (its raylet and its workers)
     running a job to that job running again on the other node (a node is added back
     after each loss);
  5. work lost to a kill: a style-transfer job whose worker is killed at about 70%,
     as steps redone, with checkpoints (every --checkpoint-seconds) and without;
  6. the checkpoints' overhead on an uninterrupted run (in-process, no Ray): the
     optimizer's seconds with checkpoints every 30 s (the default) and every second,
     against none.
Medians and ratios. Timings on a shared machine are noisy: compare the ratios.
--faults runs 4 to 6 only.
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

from nst_graphs import tiny  # noqa: E402
from ray_cluster import LocalCluster, in_namespace, kill_node, raylet_pid, why_no_namespace  # noqa: E402
from server_harness import ASSETS, Server, slow_graph, submit, wait_job  # noqa: E402

INSIDE = "NODEFLOW_BENCH_SCALE_INSIDE"


def wait_running_again(c, job: str, moved, limit: float = 300) -> dict:
    """Poll until `job` runs on a worker that `moved(worker)` accepts (the kill's survivor)."""
    deadline = time.monotonic() + limit
    while True:
        j = c.get(f"/jobs/{job}").json()
        if j["status"] == "running" and j["worker"] and moved(j["worker"]):
            return j
        assert time.monotonic() < deadline, j
        time.sleep(0.01)


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


def long_nst(steps: int, size: int = 96) -> dict:
    """The tests' tiny style transfer (VGG16, style, content and TV terms, Adam), larger and longer."""
    g = tiny(steps=steps, preview_every=0)
    for n in ("content", "style"):
        g["nodes"][n]["inputs"]["max_size"] = size
    g["nodes"]["save"]["inputs"]["metadata"] = {"from": "opt.info"}
    return g


def server(cluster: LocalCluster | None, workers: int, name: str, env: dict | None = None) -> Server:
    data = cluster.temp_dir / name if cluster else Path(tempfile.mkdtemp(prefix="nfbench"))
    (data / "inputs").mkdir(parents=True, exist_ok=True)
    for f in ("astronaut.png", "starry_night.jpg"):
        shutil.copy(ASSETS / f, data / "inputs" / f)
    args = ["--workers", str(workers)] + (["--ray", cluster.address] if cluster else [])
    env = {"NODEFLOW_RAY_NODE_IP": "127.0.0.1", "NODEFLOW_CACHE_DIR": str(data / "cache"), **(env or {})}
    return Server(data, *args, env=env).start(timeout=240)


def is_head(node_id: str) -> bool:
    pid = raylet_pid(node_id)
    return pid is not None and b"node_0" in Path(f"/proc/{pid}/cmdline").read_bytes()


def wait_running(c, job: str, node: str = "slow", timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        j = c.get(f"/jobs/{job}").json()
        if j["status"] == "running" and j["worker"] and (j["nodes"].get(node) or {}).get("progress"):
            return j
        assert time.monotonic() < deadline and j["status"] not in ("succeeded", "failed", "cancelled"), j
        time.sleep(0.05)


def node_losses(cluster: LocalCluster, losses: int) -> list[float]:
    """Seconds from a node's loss to its job running on the other node (an idle worker there)."""
    srv = server(cluster, 2, "node-loss")
    out: list[float] = []
    try:
        with srv.client() as c:
            for i in range(losses):
                # Both nodes busy; the job on the head's node is cancelled, so that its worker is
                # idle when the other node, with the other job, dies.
                ids = [submit(c, slow_graph("astronaut.png", steps=300 + 10 * i + k, delay=0.1)) for k in range(2)]
                running = [wait_running(c, job) for job in ids]
                assert len({r["worker"]["ray_node_id"] for r in running}) == 2, running
                j = next(r for r in running if not is_head(r["worker"]["ray_node_id"]))
                job = j["id"]
                other = next(r["id"] for r in running if r["id"] != job)
                c.post(f"/jobs/{other}/cancel")
                wait_job(c, other, timeout=120)
                dead = j["worker"]["ray_node_id"]
                kill_node(dead[:16])
                killed = time.monotonic()
                wait_running_again(c, job, lambda w, dead=dead: w["ray_node_id"] != dead)
                out.append(time.monotonic() - killed)
                c.post(f"/jobs/{job}/cancel")
                wait_job(c, job, timeout=120)
                cluster.add_node("127.0.0.1", 1, {"nodeflow_worker": 1, "node_1": 1})
            return out
    finally:
        srv.stop()


def steps_redone(cluster: LocalCluster, checkpoint_seconds: float, steps: int, kills: int) -> list[int]:
    """Kill the worker of a style-transfer job at about 70%: the steps it then does again."""
    env = {"NODEFLOW_CHECKPOINT_SECONDS": str(checkpoint_seconds)}
    srv = server(cluster, 1, f"redone-{checkpoint_seconds:g}", env)
    out = []
    try:
        with srv.client() as c:
            for i in range(kills):
                g = long_nst(steps)
                # another TV weight each time: no cache hit
                g["nodes"]["tv_loss"]["inputs"] = {"weight": 1.0 + checkpoint_seconds / 1e6 + i / 1000}
                job = submit(c, g)
                deadline = time.monotonic() + 900
                while True:
                    j = c.get(f"/jobs/{job}").json()
                    done = ((j["nodes"].get("opt") or {}).get("progress") or [0])[0]
                    if j["status"] == "running" and j["worker"] and done >= 0.7 * steps:
                        break
                    assert time.monotonic() < deadline, j
                    time.sleep(0.02)
                os.kill(j["worker"]["pid"], signal.SIGKILL)
                final = wait_job(c, job, timeout=900)
                assert final["status"] == "succeeded" and final["attempts"] == 2, final
                from PIL import Image

                png = c.get(final["outputs"][0]["url"]).content
                import io

                info = json.loads(Image.open(io.BytesIO(png)).text["nodeflow:metadata"])
                out.append(int(done) - int(info.get("resumed_from_step") or 0))
            return out
    finally:
        srv.stop()


def checkpoint_overhead(steps: int, runs: int) -> dict[str, list[float]]:
    """The optimizer's seconds on an uninterrupted run, in-process: no checkpoints, every 30 s, every 1 s."""
    import tempfile as tf

    from nodeflow.context import Checkpoints, Settings
    from nodeflow.executor import Executor
    from nodeflow.graph import parse_graph
    from nodeflow.plan import build_plan

    out: dict[str, list[float]] = {"none": [], "30 s": [], "1 s": []}
    intervals = {"none": None, "30 s": 30.0, "1 s": 1.0}
    for r in range(-1, runs):  # run -1 warms up (imports, weights)
        for name, interval in intervals.items():
            root = Path(tf.mkdtemp(prefix="nfckpt"))
            settings = Settings(
                input_dir=ASSETS, checkpoints=Checkpoints(root, interval) if interval is not None else None
            )
            g = long_nst(steps)
            plan = build_plan(parse_graph(g), settings, only=["opt"])
            result = Executor().run(plan)
            assert result.status == "succeeded", result.error
            if r >= 0:
                out[name].append(json.loads(result.values["opt"]["info"])["seconds"])
            shutil.rmtree(root, ignore_errors=True)
    return out


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
                wait_running_again(c, job, lambda w, pid=pid: w["pid"] != pid)
                out.append(time.monotonic() - killed)
                c.post(f"/jobs/{job}/cancel")
                wait_job(c, job, timeout=120)
            return out
    finally:
        srv.stop()


def redone(args: argparse.Namespace, cluster: LocalCluster) -> None:
    med = statistics.median
    with_ckpt = steps_redone(cluster, args.checkpoint_seconds, args.nst_steps, args.kills)
    without = steps_redone(cluster, 1e9, args.nst_steps, args.kills)
    print(f"\nstyle transfer, {args.nst_steps} steps at 96 px, its worker killed at about 70% ({args.kills} each):")
    print(f"  steps redone without checkpoints (baseline) median {med(without):6.1f}  {without}")
    print(
        f"  steps redone, checkpoints every {args.checkpoint_seconds:g} s      median {med(with_ckpt):6.1f}  "
        f"{with_ckpt}   ratio {med(with_ckpt) / max(1e-9, med(without)):.2f}x",
        flush=True,
    )


def save_seconds(side: int, n: int = 5) -> list[float]:
    """Seconds to write one AdamOptimize checkpoint (image, moments, TV duals, best image) of a
    side x side image, as the server does: serialised, then written atomically (fsync)."""
    import tempfile as tf

    import torch

    from nodeflow.context import Checkpoints
    from nodes.nst._adam import adam_state
    from nodes.nst._checkpoint import torch_dump
    from nodes.nst._keras_adam import KerasAdam
    from nodes.nst._run_record import Hooks, RunRecord
    from nodes.nst._tv_prox import TVProx

    x = torch.rand(1, 3, side, side)
    opt = KerasAdam(x, 0.02, 0.99, 0.999, 0.1)
    opt.m, opt.v = torch.rand_like(x), torch.rand_like(x)
    prox = TVProx(1.0)
    prox.dual = (torch.rand(1, 3, side - 1, side), torch.rand(1, 3, side, side - 1))
    run = RunRecord(Hooks(), 1000)
    run.best = x.clone()
    store = Checkpoints(Path(tf.mkdtemp(prefix="nfckpt")), 30.0)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        store.save("k", torch_dump("adam", adam_state(0, 10, opt, run, prox)))
        out.append(time.perf_counter() - t0)
    shutil.rmtree(store.root, ignore_errors=True)
    return out


def overhead(args: argparse.Namespace) -> None:
    med = statistics.median
    for side in (512, 1024):
        cost = med(save_seconds(side))
        print(
            f"\none AdamOptimize checkpoint at {side} px: {cost * 1000:.1f} ms (median of 5); every 30 s "
            f"(the default) that is {cost / 30 * 100:.3f}% of the run",
            flush=True,
        )
    seconds = checkpoint_overhead(args.nst_steps, args.overhead_runs)
    base = med(seconds["none"])
    print(f"\nthe same run uninterrupted, in-process, optimizer seconds (median of {args.overhead_runs}):")
    print(f"  no checkpoints (baseline)  {base:6.2f} s  {seconds['none']}")
    for name in ("30 s", "1 s"):
        m = med(seconds[name])
        print(
            f"  a checkpoint every {name:4}   {m:6.2f} s   ratio {m / base:.3f}x ({(m / base - 1) * 100:+.1f}%)  "
            f"{seconds[name]}",
            flush=True,
        )


def faults(args: argparse.Namespace, cluster: LocalCluster) -> None:
    """The fault measures (4 to 6); --kills 0, --losses 0 or --overhead-runs 0 skips one."""
    if args.kills:
        redone(args, cluster)
    if args.losses:
        lost = node_losses(cluster, args.losses)
        print(f"\na node's loss -> its job running on the other node's idle worker ({args.losses}):")
        print(f"  median {statistics.median(lost):6.2f} s  {[round(x, 2) for x in lost]}", flush=True)
    if args.overhead_runs:
        overhead(args)


def inside(args: argparse.Namespace) -> int:
    cluster = LocalCluster(nodes=2)
    try:
        t0 = time.monotonic()
        cluster.start()
        print(f"cluster of 2 nodes (1 CPU each) started in {time.monotonic() - t0:.1f} s", flush=True)
        if args.faults:
            faults(args, cluster)
            return 0
        local = latencies(None, args.small)
        remote = latencies(cluster, args.small)
        one = throughput(cluster, 1, args.jobs)
        two = throughput(cluster, 2, args.jobs)
        idle = recovery(cluster, 2, args.deaths)
        fresh = recovery(cluster, 1, args.deaths)
        faults(args, cluster)
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
    p.add_argument("--faults", action="store_true", help="only the node-loss, work-lost and checkpoint measures")
    p.add_argument("--losses", type=int, default=2, help="nodes killed")
    p.add_argument("--kills", type=int, default=2, help="style-transfer jobs killed late, per case")
    p.add_argument("--nst-steps", type=int, default=150, help="steps of the killed style-transfer job")
    p.add_argument("--checkpoint-seconds", type=float, default=2.0, help="checkpoint interval of the killed jobs")
    p.add_argument("--overhead-runs", type=int, default=3, help="uninterrupted runs per checkpoint setting")
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
