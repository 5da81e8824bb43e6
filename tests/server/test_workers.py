"""The worker count is configurable; workers share one executor and its caches."""

from __future__ import annotations

from support.server_harness import (
    open_gate,
    slow_graph,
    small_graph,
    submit,
    upload,
    wait_job,
    wait_node_started,
)


def test_two_workers_run_two_jobs_at_once_and_share_the_cache(servers, tmp_path):
    srv = servers.shared("--workers", "2")
    with srv.client() as c:
        assert c.get("/health").json()["workers"] == 2
        name = upload(c)
        gate = tmp_path / "gate"
        a = submit(c, slow_graph(name, steps=1, delay=0, gate=gate))
        b = submit(c, slow_graph(name, steps=2, delay=0, gate=gate))
        # Neither can finish before the gate opens: with one worker, b would never start.
        wait_node_started(c, a)
        wait_node_started(c, b)
        assert c.get("/jobs", params={"status": "running"}).json()["counts"]["running"] == 2
        assert c.post(f"/jobs/{a}/cancel").json()["status"] == "cancelling"
        assert wait_job(c, a)["status"] == "cancelled"
        open_gate(gate)
        assert wait_job(c, b)["status"] == "succeeded"
        first = wait_job(c, submit(c, small_graph(name, filename="one.png", max_size=40)))
        second = wait_job(c, submit(c, small_graph(name, filename="two.png", max_size=40)))
        assert first["nodes"]["load"]["state"] == "ran"
        assert second["nodes"]["load"]["source"] == "memory"  # whichever worker ran it
