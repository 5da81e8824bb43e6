"""Nothing is lost: queued jobs survive kill -9 and run after the restart; the job
that was running is marked interrupted (or re-queued); history is kept, within its limit."""

from __future__ import annotations

from pathlib import Path

from support.server_harness import (
    Server,
    events,
    open_gate,
    slow_graph,
    small_graph,
    submit,
    upload,
    wait_job,
    wait_node_started,
)


def _kill_with_jobs_queued(srv: Server, gate: Path) -> tuple[str, str, list[str], str]:
    """One finished job, one running (held until `gate` exists), three queued; then kill -9."""
    with srv.client() as c:
        name = upload(c)
        done = submit(c, small_graph(name, filename="before.png"))
        assert wait_job(c, done)["status"] == "succeeded"
        running = submit(c, slow_graph(name, steps=1, delay=0, gate=gate))
        wait_node_started(c, running)
        queued = [submit(c, small_graph(name, filename=f"q{i}.png", max_size=16 + i)) for i in range(3)]
        assert [c.get(f"/jobs/{j}").json()["status"] for j in queued] == ["queued"] * 3
        assert c.get(f"/jobs/{running}").json()["status"] == "running"
    srv.kill()
    assert srv.proc.returncode == -9
    return done, running, queued, name


def test_kill_9_with_jobs_queued_then_every_queued_job_runs_after_restart(own_server, tmp_path):
    srv = own_server().start()
    done, running, queued, _ = _kill_with_jobs_queued(srv, tmp_path / "never")
    srv.start()
    with srv.client() as c:
        for job_id in queued:
            job = wait_job(c, job_id)
            assert job["status"] == "succeeded", job
            assert c.get(job["outputs"][0]["url"]).status_code == 200
        job = c.get(f"/jobs/{running}").json()
        assert job["status"] == "interrupted" and job["attempts"] == 1
        assert "stopped" in job["error"]["message"]
        # A job finished before the crash keeps its history and its output.
        before = c.get(f"/jobs/{done}").json()
        assert before["status"] == "succeeded"
        assert c.get(before["outputs"][0]["url"]).status_code == 200
        # A stream of a job whose events died with the old process still ends, with its status.
        assert list(events(c, f"/jobs/{running}/events"))[-1]["status"] == "interrupted"


def test_the_interrupted_job_is_requeued_when_configured(own_server, tmp_path):
    srv = own_server("--requeue-interrupted").start()
    _, running, queued, _ = _kill_with_jobs_queued(srv, tmp_path / "gate")
    open_gate(tmp_path / "gate")  # the re-queued run goes through
    srv.start()
    with srv.client() as c:
        job = wait_job(c, running)
        assert job["status"] == "succeeded" and job["attempts"] == 2
        assert all(wait_job(c, j)["status"] == "succeeded" for j in queued)


def test_a_graceful_stop_interrupts_the_running_job_too(own_server, tmp_path):
    srv = own_server().start()
    with srv.client() as c:
        running = submit(c, slow_graph(upload(c), gate=tmp_path / "never"))
        wait_node_started(c, running)
    srv.stop()
    assert srv.proc.returncode in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down
    assert srv.log.read_text().rstrip().endswith("nodeflow: stopped")
    srv.start()
    with srv.client() as c:
        assert c.get(f"/jobs/{running}").json()["status"] == "interrupted"


def test_a_job_shows_as_finished_only_once_the_history_is_within_its_limit(tmp_path):
    """What a client sees the moment a job's status turns finished: no more finished jobs
    than the limit, and the pruned jobs' outputs already gone."""
    from nodeflow.executor import Executor
    from nodeflow.jobs import store as st
    from nodeflow.jobs.broadcast import Broker
    from nodeflow.jobs.config import ServerConfig
    from nodeflow.jobs.worker import WorkerPool

    config = ServerConfig(data_dir=tmp_path, history_limit=2)
    store = st.JobStore(config.db_path)
    pool = WorkerPool(config, store, Broker(), Executor())
    seen, finish = [], store.finish

    def watched(job_id, status, result):
        finish(job_id, status, result)
        seen.append((len(store.list(st.FINISHED)), len(list(config.output_root.iterdir()))))

    store.finish = watched
    try:
        for _ in range(4):
            job = store.add({"graph": {}})
            assert store.claim().id == job.id
            config.job_output_dir(job.id).mkdir(parents=True)
            pool._finish(job.id, st.SUCCEEDED, {"nodes": {}, "outputs": []})
    finally:
        store.close()
    assert seen == [(1, 1), (2, 2), (2, 2), (2, 2)]


def test_history_is_kept_within_its_limit(own_server):
    srv = own_server(env={"NODEFLOW_HISTORY_LIMIT": "3"}).start()
    with srv.client() as c:
        name = upload(c)
        ids = []
        for i in range(5):
            ids.append(submit(c, small_graph(name, filename=f"h{i}.png", max_size=16 + i)))
            assert wait_job(c, ids[-1])["status"] == "succeeded"
        kept = [j["id"] for j in c.get("/jobs").json()["jobs"]]
        assert kept == ids[:1:-1]  # newest first
        for old in ids[:2]:
            assert c.get(f"/jobs/{old}").status_code == 404
            assert not (srv.data_dir / "outputs" / old).exists()
        assert (srv.data_dir / "outputs" / ids[-1] / "h4.png").is_file()
