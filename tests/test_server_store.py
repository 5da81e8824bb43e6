"""The SQLite job store: atomic claims, crash recovery, history pruning."""
from __future__ import annotations

import threading

from nodeflow.server import store as st


def test_concurrent_workers_claim_each_job_exactly_once(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    ids = [db.add({"graph": {}, "n": i}).id for i in range(60)]
    claimed: list[str] = []
    lock = threading.Lock()

    def worker():
        while (job := db.claim()) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids) and len(set(claimed)) == 60
    assert db.counts() == {"running": 60}


def test_jobs_are_claimed_in_submission_order_and_persist(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    a, b = db.add({"graph": 1}, "me"), db.add({"graph": 2})
    assert db.position(b) == 1
    reopened = st.JobStore(tmp_path / "jobs.sqlite")  # another process, in effect
    job = reopened.claim()
    assert job.id == a.id and job.request == {"graph": 1} and job.client_id == "me" and job.attempts == 1
    reopened.finish(a.id, st.SUCCEEDED, {"outputs": []})
    assert db.get(a.id).status == st.SUCCEEDED and db.get(a.id).result == {"outputs": []}
    assert not db.cancel_queued(a.id)  # finished: not cancellable
    assert db.cancel_queued(b.id) and db.get(b.id).status == st.CANCELLED


def test_recovery_interrupts_or_requeues_with_a_retry_limit(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    job = db.add({"graph": {}})
    for attempt in range(1, st.MAX_ATTEMPTS + 1):
        assert db.claim().id == job.id  # ...and the server dies while running it
        interrupted, requeued = db.recover(requeue=True)
        if attempt < st.MAX_ATTEMPTS:
            assert requeued == [job.id] and db.get(job.id).status == st.QUEUED
        else:  # a job that keeps killing the server stops being retried
            assert interrupted == [job.id] and db.get(job.id).status == st.INTERRUPTED
    other = db.add({"graph": {}})
    db.claim()
    assert db.recover(requeue=False) == ([other.id], [])
    assert db.get(other.id).result["error"]["message"]


def test_prune_keeps_the_newest_finished_jobs_and_every_unfinished_one(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    done = []
    for _ in range(5):
        j = db.add({})
        db.claim()
        db.finish(j.id, st.SUCCEEDED, {})
        done.append(j.id)
    waiting = db.add({})
    assert db.prune(2) == done[2::-1]
    assert [j.id for j in db.list()] == [waiting.id, done[4], done[3]]
