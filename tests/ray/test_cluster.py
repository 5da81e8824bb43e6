"""`nodeflow serve --ray` on a two-node Ray cluster (one CPU each) on this machine.

The cluster, the server and the client all run in one process tree inside a
loopback-only network namespace (tests/ray_scenario.py, started once for this
module); the tests assert on the facts it records. They need root and `unshare`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.paths import SUPPORT
from support.ray_cluster import run_in_namespace, why_no_namespace

SCENARIO = SUPPORT / "ray_scenario.py"
pytestmark = pytest.mark.skipif(why_no_namespace() is not None, reason=why_no_namespace() or "")


@pytest.fixture(scope="module")
def seen(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ray") / "result.json"
    proc = run_in_namespace(SCENARIO, out, timeout=1500)
    assert out.exists(), f"the scenario wrote nothing (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    result = json.loads(out.read_text())
    result["exit"] = proc.returncode
    return result


def step(seen: dict, name: str) -> dict:
    assert name not in seen["errors"] and "setup" not in seen["errors"], seen["errors"].get(name) or seen["errors"].get(
        "setup"
    ) + "\n" + seen.get("server_log", "")
    return seen["steps"][name]


def test_the_cluster_leaves_no_process_behind(seen):
    assert seen["exit"] == 0
    marker = seen["temp_dir"].encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                left.append(pid)
        except OSError:
            pass
    assert left == []


def test_workers_run_with_the_servers_download_policy(seen):
    got = step(seen, "policy")
    assert got["status"] == "succeeded" and got["worker_pid"] != seen["server_pid"]
    assert got["places"]["offline"] and got["places"]["hf_offline"]  # the server runs without downloads


def test_jobs_run_in_actors_on_both_nodes_in_queue_order_with_the_local_pixels(seen):
    jobs = step(seen, "batch")["jobs"]
    assert [j["status"] for j in jobs] == ["succeeded"] * 4
    workers = [j["worker"] for j in jobs]
    assert len({w["ray_node_id"] for w in workers}) == 2  # both nodes took jobs
    assert all(w["pid"] != seen["server_pid"] and w["host"] and w["node_ip"] == "127.0.0.1" for w in workers)
    assert len({w["pid"] for w in workers}) == 2  # two warm actors served four jobs
    started = [j["started"] for j in jobs]
    assert started == sorted(started)  # claimed in the order they were queued
    assert all(j["pixels_equal_local"] for j in jobs)
    # the outputs came back to the job's folder, atomically (no temp files left)
    assert all(j["outputs"] == ["slow.png"] and j["folder"] == ["slow.png"] for j in jobs)


def test_progress_previews_and_log_lines_arrive_while_the_job_runs(seen):
    live = step(seen, "live")
    assert live["status"] == "succeeded"
    events = live["events"]
    kinds = [e["event"] for e in events]
    previews = [e for e in events if e["event"] == "node_preview"]
    steps = [e["message"] for e in events if e["event"] == "log" and e["message"].startswith("step ")]
    progress = [e["value"] for e in events if e["event"] == "node_progress"]
    assert len(previews) >= 5 and previews[0]["preview_size"] == [32, 32]
    assert steps == [f"step {n} of 40" for n in (10, 20, 30, 40)]
    assert progress == sorted(progress) and progress[-1] == 40
    # The job, held after 20 steps until the client opened its gate, was still running when
    # the first preview, log line and progress reached the client: they came as it ran.
    opened = kinds.index("gate_opened")
    assert events[opened]["job_status"] == "running"
    assert {"node_preview", "log", "node_progress"} <= set(kinds[:opened])
    assert "job_finished" not in kinds[:opened] and kinds[-1] == "job_finished"
    assert max(e["value"] for e in events[:opened] if e["event"] == "node_progress") <= 20


def test_a_killed_worker_gets_its_job_queued_again_and_finished_elsewhere(seen):
    kill = step(seen, "kill")
    assert kill["status"] == "succeeded" and kill["attempts"] == 2
    assert kill["again"]["pid"] != kill["before"]["pid"] and kill["after"] == kill["again"]
    assert "job_requeued" in kill["events"]
    assert kill["events"].count("job_started") == 2


def test_cancel_reaches_the_running_job(seen):
    cancel = step(seen, "cancel")
    assert cancel["answer"] == "cancelling" and cancel["status"] == "cancelled"
    assert cancel["slow_state"] == "cancelled" and cancel["attempts"] == 1


def test_a_job_that_keeps_killing_workers_ends_failed_with_the_reason(seen):
    deadly = step(seen, "deadly")
    assert deadly["status"] == "failed" and deadly["attempts"] == 3
    assert "worker died 3 time(s)" in deadly["error"]["message"]
    assert "ActorDiedError" in deadly["error"]["message"]


def test_a_sweep_on_the_cluster_gives_every_output_and_the_contact_sheet(seen):
    sweep = step(seen, "sweep")
    assert sweep["status"] == 202 and sweep["group"] == "finished"
    jobs = sweep["jobs"]
    assert [j["status"] for j in jobs] == ["succeeded"] * 4
    assert [j["output"] for j in jobs] == [
        f"edges__sobel.normalize={n}__load.max_size={s}.png" for n in ("max", "fixed") for s in (32, 48)
    ]
    assert all(j["pixels_equal_local"] for j in jobs)
    (sheet,) = sweep["sheets"]
    assert sheet["name"] == "edges__sweep.png"
    assert sheet["layout"]["rows"] == ["normalize = max", "normalize = fixed"]
    assert sheet["layout"]["columns"] == ["max_size = 32", "max_size = 48"]
    assert [c["file"] for c in sheet["layout"]["cells"]] == [j["output"] for j in jobs]
    assert sweep["invalid"]["status"] == 422
    assert {(i["node"], i["input"]) for i in sweep["invalid"]["issues"]} == {("sobel", "normalize"), ("load", "nope")}


def test_the_cli_fans_a_sweep_out_over_the_cluster(seen):
    cli = step(seen, "cli_sweep")
    remote, local = cli["runs"]["cli-ray"], cli["runs"]["cli-local"]
    assert remote["rc"] == 0, remote["stderr"]
    assert local["rc"] == 0, local["stderr"]
    assert remote["files"] == local["files"] and len(remote["files"]) == 5  # 4 variations + the sheet
    assert cli["pixels_equal_local"]
    assert "4 variation(s) on the Ray cluster, 2 at once" in remote["stderr"]
    nodes = {line.split("(Ray node ")[1][:12] for line in remote["stderr"].splitlines() if "(Ray node " in line}
    assert len(nodes) == 2  # both nodes ran variations
    assert cli["layout"]["rows"] == ["normalize = max", "normalize = fixed"]
    assert cli["layout"]["columns"] == ["max_size = 32", "max_size = 48"]


def test_a_long_job_killed_late_resumes_from_its_checkpoint(seen):
    got = step(seen, "resume")
    assert got["status"] == "succeeded" and got["attempts"] == 2, got
    assert got["workers"][0] != got["workers"][1] and got["steps"] == 60
    # killed at >= 42 of 60 steps, with a checkpoint after every step: a fresh run would redo
    # every step done; this one redoes at most the two under way when its worker died
    assert got["killed_at"] >= 42 and got["resumed_from"] >= got["killed_at"] - 2


def test_when_a_busy_node_dies_its_job_waits_for_a_worker_and_finishes_on_the_other_node(seen):
    got = step(seen, "node_lost")
    assert got["status"] == "succeeded" and got["attempts"] == 2, got
    assert got["node_again"] == got["other_node"] != got["dead_node"]
    assert got["other_status"] == "succeeded" and got["server_alive"]
    # while it waited, it showed as queued or waiting, with the reason and no stale worker
    waiting = [s for s in got["seen"] if s["status"] == "waiting"]
    # claimed first ("waiting for a worker"), then, with no worker free, what the cluster lacks
    assert waiting and all(not s["worker"] and s["waiting"].startswith("waiting for a ") for s in waiting)
    assert any("waiting for a CPU on the cluster" in s["waiting"] for s in waiting), waiting
    assert all(not s["worker"] for s in got["seen"] if s["status"] in ("queued", "waiting"))
    assert all(s["worker"] for s in got["seen"] if s["status"] == "running")  # never running without one


def test_the_server_whose_own_ray_node_dies_says_why_and_exits_or_stays_up(seen):
    got = step(seen, "own_node")
    assert "127.0.0.2" in got["attached"] and "the head" not in got["attached"]
    if got["alive"]:
        assert got["answers"]
    else:
        assert got["exit"] == 3, got
        assert any("lost the Ray node this server is attached to" in line for line in got["log_tail"]), got
        assert got["job_status"] == "queued"  # re-queued before it exited: it runs after a restart
