"""The worker count is configurable; workers share one executor and its caches."""
from __future__ import annotations

from server_harness import Server, slow_graph, small_graph, submit, upload, wait_job


def test_two_workers_run_two_jobs_at_once_and_share_the_cache(tmp_path):
    srv = Server(tmp_path / "data", "--workers", "2").start()
    try:
        with srv.client() as c:
            assert c.get("/health").json()["workers"] == 2
            name = upload(c)
            a = submit(c, slow_graph(name, steps=200, delay=0.05))
            b = submit(c, slow_graph(name, steps=201, delay=0.05))
            wait_job(c, a, until={"running"})
            wait_job(c, b, until={"running"})  # both at once: neither waits for the other
            assert c.get("/jobs", params={"status": "running"}).json()["counts"]["running"] == 2
            for j in (a, b):
                assert c.post(f"/jobs/{j}/cancel").json()["status"] == "cancelling"
                assert wait_job(c, j)["status"] == "cancelled"
            first = wait_job(c, submit(c, small_graph(name, filename="one.png", max_size=40)))
            second = wait_job(c, submit(c, small_graph(name, filename="two.png", max_size=40)))
            assert first["nodes"]["load"]["state"] == "ran"
            assert second["nodes"]["load"]["source"] == "memory"  # whichever worker ran it
    finally:
        srv.stop()
