"""The Ray scenario, run inside a loopback-only namespace by tests/ray/test_cluster.py:
`python tests/support/ray_scenario.py RESULT.json`.

Starts a two-node Ray cluster (one CPU each), `nodeflow serve --ray` with two workers,
and a client; records what happened as facts in RESULT.json (written after every
step, so a failure still leaves what was seen). The test asserts on them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from PIL import Image

# Run as a script: the tests folder (for `support`) and the test plugins go on sys.path.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent / "plugins")]
from support.nst_graphs import tiny  # noqa: E402
from support.paths import ASSETS, ROOT  # noqa: E402
from support.ray_cluster import LocalCluster, kill_node, raylet_pid  # noqa: E402
from support.server_harness import Server, events, slow_graph, submit, upload, wait_job  # noqa: E402


def local_pixels(graph: dict, input_dir: Path, sweep: dict | None = None) -> list:
    """The same graph on an in-process Executor: the pixels of its Save."""
    import slow_nodes  # noqa: F401  (registers SlowInvert here too)

    from nodeflow.context import Settings
    from nodeflow.executor import Executor
    from nodeflow.graph import apply_overrides, parse_graph
    from nodeflow.plan import build_plan
    from nodeflow.sweeps.sweep import tag_settings

    out = Path(tempfile.mkdtemp(prefix="local-"))
    settings = tag_settings(Settings(input_dir=input_dir, output_dir=out), sweep)
    plan = build_plan(apply_overrides(parse_graph(graph), sweep or {}), settings)
    result = Executor().run(plan)
    (path,) = result.nodes["save"].outputs
    return np.asarray(Image.open(path)).tolist()


def pixels(data: bytes) -> list:
    return np.asarray(Image.open(io.BytesIO(data))).tolist()


def wait_until(fn, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {fn.__name__}")


def edges_graph(path: str) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": path, "max_size": 48}},
            "sobel": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}}},
            "save": {"type": "Save", "inputs": {"image": {"from": "sobel.magnitude"}, "filename": "edges.png"}},
        }
    }


def step_batch(c, srv, name: str) -> dict:
    """Four jobs, two workers: both nodes take jobs, in queue order; pixels as local."""
    graphs = [slow_graph(name, steps=15 + i, delay=0.1) for i in range(4)]
    for i, g in enumerate(graphs):
        g["nodes"]["load"]["inputs"]["max_size"] = 24 + 8 * i
    ids = [submit(c, g) for g in graphs]
    jobs = [wait_job(c, j, timeout=300) for j in ids]
    out = []
    for g, job in zip(graphs, jobs, strict=False):
        files = {o["name"]: c.get(o["url"]).content for o in job["outputs"]}
        out.append(
            {
                "status": job["status"],
                "started": job["started"],
                "worker": job["worker"],
                "outputs": sorted(files),
                "folder": sorted(p.name for p in (srv.data_dir / "outputs" / job["id"]).iterdir()),
                "pixels_equal_local": bool(files)
                and pixels(files["slow.png"]) == local_pixels(g, srv.data_dir / "inputs"),
            }
        )
    return {"jobs": out}


def step_policy(c) -> dict:
    """What a worker actor sees of the server's download policy (downloads off here)."""
    job = wait_job(c, submit(c, {"nodes": {"places": {"type": "DownloadPlaces", "inputs": {}}}}), timeout=300)
    places = c.get(f"/jobs/{job['id']}/outputs/places.json")
    return {
        "status": job["status"],
        "worker_pid": (job.get("worker") or {}).get("pid"),
        "places": places.json() if places.status_code == 200 else None,
    }


def step_live(c, name: str) -> dict:
    """Progress, previews and log lines arrive while the job runs, not after: the job is held
    after 20 of its 40 steps (a gate) until the client has seen the first of each; only then
    does the client open the gate ("gate_opened" in the events, with the job's status then)."""
    gate = Path(tempfile.mkdtemp(prefix="live-")) / "gate"
    g = slow_graph(name, steps=40, delay=0.1)
    g["nodes"]["slow"]["inputs"].update(log_every=10, gate=str(gate), gate_after=20)
    job = submit(c, g)
    seen = []
    for e in events(c, f"/jobs/{job}/events", stop=lambda e: e["event"] == "job_finished", timeout=300):
        item = {"event": e["event"]}
        if e["event"] == "node_preview":
            im = Image.open(io.BytesIO(base64.b64decode(e["image"]["base64"])))
            item["preview_size"] = list(im.size)
        if e["event"] == "log":
            item["message"] = e["message"]
        if e["event"] == "node_progress":
            item["value"] = e["value"]
        seen.append(item)
        kinds = {i["event"] for i in seen}
        if not gate.exists() and {"node_preview", "log", "node_progress"} <= kinds:
            seen.append({"event": "gate_opened", "job_status": c.get(f"/jobs/{job}").json()["status"]})
            gate.write_bytes(b"")
    return {"events": seen, "status": c.get(f"/jobs/{job}").json()["status"]}


def step_kill(c, name: str) -> dict:
    """kill -9 of the actor running a job: the job is queued again and succeeds."""
    job = submit(c, slow_graph(name, steps=60, delay=0.1))

    def progressing():
        j = c.get(f"/jobs/{job}").json()
        return (
            j if j["status"] == "running" and j["worker"] and (j["nodes"].get("slow") or {}).get("progress") else None
        )

    before = wait_until(progressing, 300)
    os.kill(before["worker"]["pid"], signal.SIGKILL)
    killed = time.monotonic()

    def elsewhere():
        j = c.get(f"/jobs/{job}").json()
        return j if j["worker"] and j["worker"]["pid"] != before["worker"]["pid"] and j["status"] == "running" else None

    again = wait_until(elsewhere, 300, step=0.02)
    running_again = time.monotonic() - killed
    after = wait_job(c, job, timeout=300)
    kinds = [e["event"] for e in events(c, f"/jobs/{job}/events", stop=lambda e: e["event"] == "job_finished")]
    return {
        "before": before["worker"],
        "again": again["worker"],
        "after": after["worker"],
        "status": after["status"],
        "attempts": after["attempts"],
        "seconds_to_running_again": running_again,
        "events": kinds,
    }


def step_cancel(c, name: str) -> dict:
    job = submit(c, slow_graph(name, steps=600, delay=0.1))

    def progressing():
        j = c.get(f"/jobs/{job}").json()
        return j if (j["nodes"].get("slow") or {}).get("progress") else None

    wait_until(progressing, 300)
    t0 = time.monotonic()
    answer = c.post(f"/jobs/{job}/cancel").json()["status"]
    final = wait_job(c, job, timeout=120)
    return {
        "answer": answer,
        "status": final["status"],
        "seconds": time.monotonic() - t0,
        "slow_state": final["nodes"].get("slow", {}).get("state"),
        "attempts": final["attempts"],
    }


def step_deadly(c, name: str) -> dict:
    """A job that kills every worker it runs on ends failed after its attempts."""
    g = {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": name, "max_size": 16}},
            "kill": {"type": "KillProcess", "inputs": {"image": {"from": "load.image"}}},
            "save": {"type": "Save", "inputs": {"image": {"from": "kill.image"}, "filename": "never.png"}},
        }
    }
    job = wait_job(c, submit(c, g), timeout=400)
    return {"status": job["status"], "attempts": job["attempts"], "error": job["error"]}


def step_sweep(c, srv, name: str) -> dict:
    g = edges_graph(name)
    r = c.post("/jobs", json={"graph": g, "sweep": {"sobel.normalize": ["max", "fixed"], "load.max_size": [32, 48]}})
    body = r.json()
    deadline = time.monotonic() + 300
    group = c.get(body["url"]).json()
    while group["status"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.2)
        group = c.get(body["url"]).json()
    jobs = []
    for j in group["jobs"]:
        job = c.get(j["url"]).json()
        (out,) = job["outputs"] or [{"name": None, "url": None}]
        data = c.get(out["url"]).content if out["url"] else b""
        jobs.append(
            {
                "status": job["status"],
                "values": j["values"],
                "output": out["name"],
                "worker": job["worker"],
                "pixels_equal_local": bool(data)
                and pixels(data) == local_pixels(g, srv.data_dir / "inputs", j["values"]),
            }
        )
    sheets = []
    for s in group["contact_sheets"]:
        im = Image.open(io.BytesIO(c.get(s["url"]).content))
        sheets.append({"name": s["name"], "layout": json.loads(im.info["nodeflow:contact_sheet"])})
    bad = c.post("/jobs", json={"graph": g, "sweep": {"sobel.normalize": ["max", "sideways"], "load.nope": [1]}})
    return {
        "status": r.status_code,
        "group": group["status"],
        "jobs": jobs,
        "sheets": sheets,
        "invalid": {"status": bad.status_code, "issues": bad.json().get("issues")},
    }


def step_cli_sweep(cluster: LocalCluster) -> dict:
    """`nodeflow run --sweep ... --ray`: the variations on the cluster, pixels as a local sweep's."""
    import subprocess

    spec = [
        "graphs/edges.json",
        "--input-dir",
        str(ASSETS),
        "--sweep",
        "sobel.normalize=max,fixed",
        "--sweep",
        "load.max_size=32,48",
        "-q",
    ]
    env = dict(os.environ, NODEFLOW_RAY_NODE_IP="127.0.0.1", NODEFLOW_RAY_RESOURCES=json.dumps({"nodeflow_worker": 1}))
    remote, local = cluster.temp_dir / "cli-ray", cluster.temp_dir / "cli-local"
    runs = {}
    for out, extra in ((remote, ["--ray", cluster.address]), (local, ["--no-cache"])):
        p = subprocess.run(
            [sys.executable, "-m", "nodeflow", "run", *spec, "--out", str(out), *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        runs[out.name] = {
            "rc": p.returncode,
            "stderr": p.stderr[-4000:],
            "files": sorted(f.name for f in out.iterdir()) if out.exists() else [],
        }
    same = all(
        np.array_equal(np.asarray(Image.open(remote / f)), np.asarray(Image.open(local / f)))
        for f in runs["cli-local"]["files"]
        if f in runs["cli-ray"]["files"] and "__sweep" not in f
    )
    sheet = remote / "edges__sweep.png"
    layout = json.loads(Image.open(sheet).info["nodeflow:contact_sheet"]) if sheet.exists() else None
    return {"runs": runs, "pixels_equal_local": same, "layout": layout}


def nst_graph(content: str, style: str, steps: int) -> dict:
    g = tiny(steps=steps, preview_every=0)
    g["nodes"]["content"]["inputs"]["path"] = content
    g["nodes"]["style"]["inputs"]["path"] = style
    g["nodes"]["save"]["inputs"]["metadata"] = {"from": "opt.info"}
    return g


def png_info(c, job: dict) -> dict:
    data = c.get(job["outputs"][0]["url"]).content
    return json.loads(Image.open(io.BytesIO(data)).text["nodeflow:metadata"])


def step_resume(c, content: str, style: str, steps: int = 60) -> dict:
    """A style-transfer job whose worker is killed at about 70%: it resumes from its last
    checkpoint (the server checkpoints every step here) on attempt 2."""
    job = submit(c, nst_graph(content, style, steps))

    def late():
        j = c.get(f"/jobs/{job}").json()
        done = ((j["nodes"].get("opt") or {}).get("progress") or [0])[0]
        return j if j["status"] == "running" and j["worker"] and done >= 0.7 * steps else None

    before = wait_until(late, 400, step=0.02)
    killed_at = before["nodes"]["opt"]["progress"][0]
    os.kill(before["worker"]["pid"], signal.SIGKILL)
    after = wait_job(c, job, timeout=400)
    info = png_info(c, after) if after["status"] == "succeeded" else {}
    return {
        "status": after["status"],
        "attempts": after["attempts"],
        "killed_at": killed_at,
        "steps": info.get("steps"),
        "resumed_from": info.get("resumed_from_step"),
        "workers": [before["worker"]["pid"], (after["worker"] or {}).get("pid")],
    }


def is_head(node_id: str) -> bool:
    pid = raylet_pid(node_id)
    return pid is not None and b"node_0" in Path(f"/proc/{pid}/cmdline").read_bytes()


def step_node_lost(c, srv, name: str) -> dict:
    """Both worker nodes busy, then the one that is not the head dies: its job goes back to the
    queue, waits (shown as waiting, with its reason and no worker) and then runs on the other
    node, attempt 2; the server stays up."""
    ids = [submit(c, slow_graph(name, steps=150 + i, delay=0.1)) for i in range(2)]

    def both_running():
        jobs = [c.get(f"/jobs/{j}").json() for j in ids]
        ok = all(
            j["status"] == "running" and j["worker"] and (j["nodes"].get("slow") or {}).get("progress") for j in jobs
        )
        return jobs if ok and len({j["worker"]["ray_node_id"] for j in jobs}) == 2 else None

    jobs = wait_until(both_running, 300)
    victim = next(j for j in jobs if not is_head(j["worker"]["ray_node_id"]))
    other = next(j for j in jobs if j is not victim)
    dead_node = victim["worker"]["ray_node_id"]
    kill_node(dead_node[:16])
    killed = time.monotonic()
    seen, again, requeued_after = [], None, None
    deadline = killed + 300
    while time.monotonic() < deadline:
        j = c.get(f"/jobs/{victim['id']}").json()
        state = {"status": j["status"], "waiting": j.get("waiting"), "worker": bool(j["worker"])}
        if requeued_after is None and j["status"] != "running":
            requeued_after = time.monotonic() - killed
        if not seen or seen[-1] != state:
            seen.append(state)
        if j["status"] == "running" and j["worker"] and j["worker"]["ray_node_id"] != dead_node:
            again = j
            break
        if j["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            break
        time.sleep(0.05)
    running_again = time.monotonic() - killed
    final = wait_job(c, victim["id"], timeout=300)
    other_final = wait_job(c, other["id"], timeout=300)
    return {
        "seen": seen,
        "requeued_after": requeued_after,
        "seconds_to_running_again": running_again,
        "status": final["status"],
        "attempts": final["attempts"],
        "node_again": (again or {}).get("worker", {}).get("ray_node_id"),
        "dead_node": dead_node,
        "other_node": other["worker"]["ray_node_id"],
        "other_status": other_final["status"],
        "server_alive": srv.proc.poll() is None,
    }


def step_own_node(c, srv, name: str) -> dict:
    """The node the server is attached to (not the head) dies while a job runs: the server
    re-queues the job, says why and exits non-zero, or stays up."""
    import sqlite3

    line = next(x for x in srv.log.read_text().splitlines() if "attached to node" in x)
    node = line.split("attached to node ")[1].split()[0]
    job = submit(c, slow_graph(name, steps=300, delay=0.1))
    wait_until(lambda: (c.get(f"/jobs/{job}").json()["nodes"].get("slow") or {}).get("progress"), 300)
    kill_node(node)
    deadline = time.monotonic() + 60
    while srv.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = srv.proc.poll() is None
    answers = False
    if alive:
        try:
            answers = c.get("/health").status_code == 200
        except Exception:
            answers = False
    with sqlite3.connect(srv.data_dir / "jobs.sqlite") as db:
        (status,) = db.execute("SELECT status FROM jobs WHERE id = ?", (job,)).fetchone()
    return {
        "attached": line,
        "job_status": status,
        "alive": alive,
        "answers": answers,
        "exit": srv.proc.returncode,
        "log_tail": srv.log.read_text(errors="replace").splitlines()[-3:],
    }


def main(result_path: str) -> int:
    result: dict = {"steps": {}, "errors": {}, "seconds": {}}

    def save() -> None:
        Path(result_path).write_text(json.dumps(result, indent=1))

    def run(steps: list) -> None:
        for step, fn in steps:
            t = time.monotonic()
            try:
                result["steps"][step] = fn()
            except Exception:
                result["errors"][step] = traceback.format_exc()
            result["seconds"][step] = round(time.monotonic() - t, 2)
            save()

    cluster = LocalCluster(nodes=2)
    result["temp_dir"] = str(cluster.temp_dir)
    srv = None
    try:
        t0 = time.monotonic()
        cluster.start()
        result["cluster_seconds"] = time.monotonic() - t0
        save()
        srv = Server(
            cluster.temp_dir / "server",
            "--workers",
            "2",
            "--ray",
            cluster.address,
            env={"NODEFLOW_RAY_NODE_IP": "127.0.0.1", "NODEFLOW_RAY_RESOURCES": json.dumps({"nodeflow_worker": 1})},
        )
        srv.start(timeout=240)
        result["server_pid"] = srv.proc.pid
        save()
        with srv.client() as c:
            name = upload(c)
            run(
                [
                    ("batch", lambda: step_batch(c, srv, name)),
                    ("policy", lambda: step_policy(c)),
                    ("live", lambda: step_live(c, name)),
                    ("kill", lambda: step_kill(c, name)),
                    ("cancel", lambda: step_cancel(c, name)),
                    ("sweep", lambda: step_sweep(c, srv, name)),
                    ("deadly", lambda: step_deadly(c, name)),
                ]
            )
        srv.stop()  # its actors hold the cluster's two CPUs: the CLI's turn
        run([("cli_sweep", lambda: step_cli_sweep(cluster))])
        # Faults of whole nodes: a server on a machine of its own (127.0.0.2, a node with no
        # CPU for workers, not the head), checkpoints after every step.
        cluster.add_node("127.0.0.2", cpus=0)
        srv = Server(
            cluster.temp_dir / "server2",
            "--workers",
            "2",
            "--ray",
            cluster.address,
            env={
                "NODEFLOW_RAY_NODE_IP": "127.0.0.2",
                "NODEFLOW_RAY_RESOURCES": json.dumps({"nodeflow_worker": 1}),
                "NODEFLOW_CHECKPOINT_SECONDS": "0",
            },
        )
        srv.start(timeout=240)
        with srv.client() as c:
            name, style = upload(c), upload(c, "starry_night.jpg")
            run(
                [
                    ("resume", lambda: step_resume(c, name, style)),
                    ("node_lost", lambda: step_node_lost(c, srv, name)),
                    ("own_node", lambda: step_own_node(c, srv, name)),
                ]
            )
    except Exception:
        result["errors"]["setup"] = traceback.format_exc()
    finally:
        if srv is not None:
            srv.stop()
            result["server_log"] = srv.log.read_text(errors="replace")[-6000:]
        cluster.stop()
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
