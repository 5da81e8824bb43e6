"""The SQLite job store: atomic claims, crash recovery, history pruning."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from nodeflow.jobs import store as st


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


def test_list_filters_orders_newest_first_and_pages(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    a, b, c = db.add({}, "alice"), db.add({}, "bob"), db.add({}, "alice")
    assert db.claim().id == a.id
    ids = lambda jobs: [j.id for j in jobs]  # noqa: E731
    assert ids(db.list()) == [c.id, b.id, a.id]
    assert ids(db.list(status=st.QUEUED)) == [c.id, b.id]
    assert ids(db.list(client_id="alice")) == [c.id, a.id]
    assert ids(db.list(status=st.QUEUED, client_id="alice")) == [c.id]
    assert ids(db.list(limit=1)) == [c.id] and ids(db.list(limit=1, offset=1)) == [b.id]
    assert db.counts() == {st.QUEUED: 2, st.RUNNING: 1}
    assert (db.position(b), db.position(c)) == (0, 1)
    assert db.get("nope") is None


def test_a_job_records_its_times_attempts_and_result(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    job = db.add({"graph": {"nodes": {}}}, job_id="j1")
    assert (job.id, job.status, job.started, job.finished, job.attempts, job.result) == (
        "j1",
        st.QUEUED,
        None,
        None,
        0,
        None,
    )
    running = db.claim()
    assert running.status == st.RUNNING and running.attempts == 1 and running.started >= job.created
    db.finish("j1", st.FAILED, {"error": {"message": "boom"}})
    done = db.get("j1")
    assert done.status == st.FAILED and done.finished >= done.started and done.result == {"error": {"message": "boom"}}
    assert done.seq == job.seq and db.add({}).seq > job.seq


def test_finish_touches_only_a_running_job(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    queued, cancelled = db.add({}), db.add({})
    assert db.cancel_queued(cancelled.id) and not db.cancel_queued(cancelled.id)
    for job in (queued, cancelled):
        db.finish(job.id, st.SUCCEEDED, {"outputs": []})
    assert db.get(queued.id).status == st.QUEUED and db.get(queued.id).result is None
    assert db.get(cancelled.id).status == st.CANCELLED and db.get(cancelled.id).result is None
    assert db.get(cancelled.id).finished is not None and db.get(cancelled.id).started is None
    assert db.claim().id == queued.id and db.claim() is None


def test_recovery_leaves_queued_and_finished_jobs_alone(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    done, running, waiting = db.add({}), db.add({}), db.add({})
    db.claim()
    db.finish(done.id, st.SUCCEEDED, {"outputs": ["x"]})
    db.claim()
    assert db.recover(requeue=True) == ([], [running.id])
    again = db.get(running.id)
    assert again.status == st.QUEUED and again.started is None and again.attempts == 1 and again.result is None
    assert db.get(waiting.id).status == st.QUEUED and db.get(done.id).result == {"outputs": ["x"]}
    assert db.recover(requeue=True) == ([], [])  # nothing was running


def test_the_queue_is_durable_and_closes(tmp_path):
    db = st.JobStore(tmp_path / "sub" / "dir" / "jobs.sqlite")  # its folders are created
    pragma = lambda name: db._one(f"PRAGMA {name}")[0]  # noqa: E731
    assert (pragma("journal_mode"), pragma("synchronous"), pragma("busy_timeout")) == ("wal", 2, 5000)
    db.add({})
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):
        db.counts()
    assert st.JobStore(tmp_path / "sub" / "dir" / "jobs.sqlite").counts() == {st.QUEUED: 1}


def test_a_sweep_group_is_stored_with_its_jobs_and_finished_once(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    sweep = [{"target": "a.b", "values": [1, 2]}]
    jobs = db.add_group("g1", sweep, [("j1", {"n": 1}), ("j2", {"n": 2})], client_id="me")
    assert [(j.id, j.request, j.group_id, j.client_id, j.status) for j in jobs] == [
        ("j1", {"n": 1}, "g1", "me", st.QUEUED),
        ("j2", {"n": 2}, "g1", "me", st.QUEUED),
    ]
    other = db.add_group("g2", [], [("j3", {})])
    group = db.group("g1")
    assert {k: group[k] for k in ("id", "client_id", "sweep", "finished", "result")} == {
        "id": "g1",
        "client_id": "me",
        "sweep": sweep,
        "finished": None,
        "result": None,
    }
    assert group["created"] == jobs[0].created and db.group("nope") is None
    assert [j.request for j in db.group_jobs("g1")] == [{"n": 1}, {"n": 2}] and db.group_jobs("g2") == other
    assert db.unfinished_groups() == ["g1", "g2"]
    assert db.finish_group("g1", {"contact_sheets": ["s.png"]}) and not db.finish_group("g1", {})
    assert db.group("g1")["result"] == {"contact_sheets": ["s.png"]} and db.group("g1")["finished"] >= group["created"]
    assert db.unfinished_groups() == ["g2"]


def test_a_group_that_cannot_be_queued_whole_queues_nothing(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    db.add({}, job_id="taken")
    with pytest.raises(sqlite3.IntegrityError):
        db.add_group("g", [], [("fresh", {}), ("taken", {})])
    assert db.group("g") is None and db.get("fresh") is None
    assert db.add_group("g", [], [("fresh", {})])[0].id == "fresh"  # no transaction left open


def test_finished_groups_go_once_none_of_their_jobs_is_kept(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    db.add_group("done", [], [("d1", {})])
    db.add_group("open", [], [("o1", {})])
    db.finish_group("done", {})
    assert db.prune_groups() == []  # its job is still kept
    db.claim()
    db.finish("d1", st.SUCCEEDED, {})
    assert db.delete_finished(["d1"]) == ["d1"]
    assert db.prune_groups() == ["done"] and db.group("done") is None and db.group("open") is not None
    assert db.prune_groups() == []


def test_deleting_finished_jobs_leaves_unfinished_ones(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    done = [db.add({}) for _ in range(3)]
    for job in done:
        db.claim()
        db.finish(job.id, st.SUCCEEDED, {})
    running, queued = db.add({}), db.add({})
    db.claim()
    assert db.unfinished() == 2
    assert db.delete_finished([done[0].id, running.id, queued.id, "nope"]) == [done[0].id]
    assert db.delete_finished(None) == [done[1].id, done[2].id]
    assert [j.id for j in db.list()] == [queued.id, running.id] and db.unfinished() == 2


def test_list_takes_several_statuses_and_a_hundred_by_default(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    ids = [db.add({}).id for _ in range(101)]
    db.claim()
    assert len(db.list()) == 100 and db.list()[0].id == ids[-1]
    assert [j.id for j in db.list(status=[st.RUNNING, st.CANCELLED])] == [ids[0]]
    assert len(db.list(status=(st.QUEUED, st.RUNNING), limit=1000)) == 101


def test_workers_and_requeues_are_recorded(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    job = db.add({})
    assert db.get(job.id).worker is None and not db.requeue(job.id)  # not running
    db.claim()
    db.set_worker(job.id, {"host": "h", "pid": 7})
    assert db.get(job.id).worker == {"host": "h", "pid": 7}
    assert db.requeue(job.id) and db.get(job.id).status == st.QUEUED and db.get(job.id).started is None


def test_an_interrupted_job_says_why_and_a_failed_recovery_changes_nothing(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    job = db.add({})
    db.claim()

    class FailingUpdates:
        """The connection, except that marking a job interrupted fails half-way."""

        def __init__(self, real):
            self.real = real

        def execute(self, sql, *args):
            if sql.startswith("UPDATE jobs SET status = ?, finished"):
                raise RuntimeError("disk gone")
            return self.real.execute(sql, *args)

    real = db._db
    db._db = FailingUpdates(real)
    with pytest.raises(RuntimeError, match="disk gone"):
        db.recover(requeue=False)
    db._db = real
    assert db.get(job.id).status == st.RUNNING  # rolled back, and no transaction left open
    assert db.recover(requeue=False) == ([job.id], [])
    assert db.get(job.id).result == {"error": {"message": "the server stopped while this job was running"}}


def test_a_store_from_before_groups_opens_with_its_jobs_and_takes_groups(tmp_path):
    import sqlite3

    from nodeflow.jobs.store import JobStore

    db = sqlite3.connect(tmp_path / "jobs.sqlite")
    db.executescript(
        "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, "
        "status TEXT NOT NULL, client_id TEXT, request TEXT NOT NULL, created REAL NOT NULL, "
        "started REAL, finished REAL, attempts INTEGER NOT NULL DEFAULT 0, result TEXT);"
        "INSERT INTO jobs (id, status, request, created) VALUES ('old', 'queued', '{}', 1);"
    )
    db.commit()
    db.close()
    store = JobStore(tmp_path / "jobs.sqlite")
    old = store.get("old")
    assert old.status == "queued" and old.group_id is None and old.worker is None
    jobs = store.add_group("g1", [{"target": "a.b", "values": [1, 2]}], [("j1", {"n": 1}), ("j2", {"n": 2})])
    assert [j.group_id for j in jobs] == ["g1", "g1"]
    assert [j.id for j in store.group_jobs("g1")] == ["j1", "j2"]
    assert store.claim().id == "old"  # still first in the queue
    store.set_worker("old", {"pid": 7})
    assert store.get("old").worker == {"pid": 7}
    assert store.requeue("old") and store.get("old").status == "queued"
    assert store.finish_group("g1", {"contact_sheets": []}) and not store.finish_group("g1", {})
    store.close()


def test_a_claimed_job_waits_with_its_reason_and_a_requeue_forgets_its_worker(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    job = db.add({})
    db.claim()
    db.set_worker(job.id, {"host": "a", "pid": 1})
    db.set_waiting(job.id, "waiting for a CPU on the cluster")
    got = db.get(job.id)
    assert got.status == st.WAITING and got.waiting == "waiting for a CPU on the cluster" and got.worker is None
    assert db.unfinished() == 1 and db.list(st.WAITING)[0].id == job.id
    db.set_worker(job.id, {"host": "b", "pid": 2})
    got = db.get(job.id)
    assert got.status == st.RUNNING and got.waiting is None and got.worker == {"host": "b", "pid": 2}
    assert db.requeue(job.id, "re-queued: its worker was lost")
    got = db.get(job.id)
    assert got.status == st.QUEUED and got.worker is None and got.waiting == "re-queued: its worker was lost"
    assert got.attempts == 1
    db.claim()
    assert db.requeue(job.id, "no worker in time", count=False)  # gives the attempt back
    assert db.get(job.id).attempts == 1
    db.claim()
    db.set_waiting(job.id, "waiting")
    db.finish(job.id, st.CANCELLED, {})  # a waiting job can end (cancelled while it waited)
    assert db.get(job.id).status == st.CANCELLED and db.get(job.id).waiting is None


def test_recovery_requeues_the_jobs_that_hold_a_checkpoint_by_default(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    a, b, c = db.add({}), db.add({}), db.add({})
    for _ in range(3):
        db.claim()
    db.set_waiting(c.id, "waiting for a CPU on the cluster")
    interrupted, requeued = db.recover(requeue=False, resumable=lambda job_id: job_id in (a.id, c.id))
    assert interrupted == [b.id] and sorted(requeued) == sorted([a.id, c.id])
    assert db.get(a.id).status == st.QUEUED and db.get(c.id).status == st.QUEUED
    assert db.get(b.id).status == st.INTERRUPTED


def test_a_job_claimed_for_a_remote_worker_waits_until_it_starts(tmp_path):
    db = st.JobStore(tmp_path / "jobs.sqlite")
    job = db.add({})
    claimed = db.claim("waiting for a worker")
    assert claimed.id == job.id and claimed.status == st.WAITING and claimed.waiting == "waiting for a worker"
    db.set_worker(job.id, {"pid": 3})
    assert db.get(job.id).status == st.RUNNING
