"""The persistent job queue: one SQLite file (WAL) in the server's data directory.

Every state change is one committed transaction, so a kill -9 loses nothing that
was acknowledged: a submitted job is on disk before its 202 is sent. Jobs are
claimed atomically (one UPDATE ... RETURNING), so two workers never run the same job.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUED, WAITING, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = (
    "queued",
    "waiting",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "interrupted",
)
FINISHED = (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
# Claimed by a worker thread: waiting for a worker process (a Ray actor to be placed), or running.
ACTIVE = (WAITING, RUNNING)
# A job re-queued after this many interruptions stays interrupted: a graph that
# crashes the server must not crash it forever.
MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT UNIQUE NOT NULL,
    status       TEXT NOT NULL,
    client_id    TEXT,
    request      TEXT NOT NULL,      -- {"graph": ..., "overrides": ..., "only": ...}
    created      REAL NOT NULL,
    started      REAL,
    finished     REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    result       TEXT                -- {"nodes": ..., "outputs": ..., "error": ...}
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
CREATE TABLE IF NOT EXISTS groups (  -- a sweep: its jobs carry its id
    id           TEXT PRIMARY KEY,
    client_id    TEXT,
    sweep        TEXT NOT NULL,      -- [{"target": "node.input", "values": [...]}, ...]
    created      REAL NOT NULL,
    finished     REAL,               -- set when its last job has ended
    result       TEXT                -- {"contact_sheets": [...]}
);
"""
# Columns added after the first release: a store from before gets them on open.
_ADDED_COLUMNS = {"group_id": "TEXT", "worker": "TEXT", "waiting": "TEXT"}


@dataclass
class Job:
    id: str
    status: str
    client_id: str | None
    request: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    attempts: int
    result: dict[str, Any] | None
    seq: int = 0
    group_id: str | None = None
    worker: dict[str, Any] | None = None  # where it ran: host, pid (and the Ray node id)
    waiting: str | None = None  # why a claimed job is not running yet (status waiting)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=row["id"],
            status=row["status"],
            client_id=row["client_id"],
            request=json.loads(row["request"]),
            created=row["created"],
            started=row["started"],
            finished=row["finished"],
            attempts=row["attempts"],
            result=json.loads(row["result"]) if row["result"] else None,
            seq=row["seq"],
            group_id=row["group_id"],
            worker=json.loads(row["worker"]) if row["worker"] else None,
            waiting=row["waiting"],
        )


class JobStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, serialised by a lock: SQLite writes are serial anyway,
        # and every statement here takes well under a millisecond.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a 202 means the job is on disk
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            have = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_group ON jobs(group_id)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _count(self, sql: str, args: tuple = ()) -> int:
        row = self._one(sql, args)
        return row[0] if row is not None else 0

    def _all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def add(self, request: dict[str, Any], client_id: str | None = None, job_id: str | None = None) -> Job:
        job_id = job_id or uuid.uuid4().hex
        row = self._one(
            "INSERT INTO jobs (id, status, client_id, request, created) VALUES (?, ?, ?, ?, ?) RETURNING *",
            (job_id, QUEUED, client_id, json.dumps(request), time.time()),
        )
        assert row is not None  # INSERT ... RETURNING gives the row
        return Job.from_row(row)

    def add_group(
        self, group_id: str, sweep: list[dict], requests: list[tuple[str, dict]], client_id: str | None = None
    ) -> list[Job]:
        """A sweep's group and its jobs (job id, request), queued in one transaction."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO groups (id, client_id, sweep, created) VALUES (?, ?, ?, ?)",
                    (group_id, client_id, json.dumps(sweep), now),
                )
                rows = [
                    self._db.execute(
                        "INSERT INTO jobs (id, status, client_id, request, created, group_id) "
                        "VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                        (job_id, QUEUED, client_id, json.dumps(request), now, group_id),
                    ).fetchone()
                    for job_id, request in requests
                ]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [Job.from_row(r) for r in rows]

    def group(self, group_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM groups WHERE id = ?", (group_id,))
        if row is None:
            return None
        return {
            "id": row["id"],
            "client_id": row["client_id"],
            "sweep": json.loads(row["sweep"]),
            "created": row["created"],
            "finished": row["finished"],
            "result": json.loads(row["result"]) if row["result"] else None,
        }

    def group_jobs(self, group_id: str) -> list[Job]:
        return [Job.from_row(r) for r in self._all("SELECT * FROM jobs WHERE group_id = ? ORDER BY seq", (group_id,))]

    def finish_group(self, group_id: str, result: dict[str, Any]) -> bool:
        row = self._one(
            "UPDATE groups SET finished = ?, result = ? WHERE id = ? AND finished IS NULL RETURNING id",
            (time.time(), json.dumps(result), group_id),
        )
        return row is not None

    def unfinished_groups(self) -> list[str]:
        return [r[0] for r in self._all("SELECT id FROM groups WHERE finished IS NULL ORDER BY created")]

    def prune_groups(self) -> list[str]:
        """Delete finished groups none of whose jobs are kept any more; return their ids."""
        rows = self._all(
            "SELECT id FROM groups WHERE finished IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.group_id = groups.id)"
        )
        ids = [r[0] for r in rows]
        if ids:
            with self._lock:
                self._db.executemany("DELETE FROM groups WHERE id = ?", [(i,) for i in ids])
        return ids

    def set_worker(self, job_id: str, worker: dict[str, Any]) -> None:
        """A worker has started the job: it is running from now on."""
        self._one(
            "UPDATE jobs SET worker = ?, status = ?, waiting = NULL WHERE id = ? AND status IN (?, ?)",
            (json.dumps(worker), RUNNING, job_id, *ACTIVE),
        )

    def set_waiting(self, job_id: str, reason: str) -> None:
        """The job's worker thread waits for a worker process (e.g. a CPU on the cluster)."""
        self._one(
            "UPDATE jobs SET status = ?, waiting = ?, worker = NULL WHERE id = ? AND status IN (?, ?)",
            (WAITING, reason, job_id, *ACTIVE),
        )

    def requeue(self, job_id: str, reason: str | None = None, count: bool = True) -> bool:
        """Put a claimed job back in the queue, in its old place (its worker died, or none
        could be placed: then `count` False gives the attempt back). Its dead worker is forgotten."""
        row = self._one(
            "UPDATE jobs SET status = ?, started = NULL, worker = NULL, waiting = ?, attempts = attempts - ? "
            "WHERE id = ? AND status IN (?, ?) RETURNING id",
            (QUEUED, reason, 0 if count else 1, job_id, *ACTIVE),
        )
        return row is not None

    def get(self, job_id: str) -> Job | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(row) if row else None

    def list(
        self,
        status: str | tuple[str, ...] | None = None,
        client_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs, newest first; `status` is one status or a tuple of them."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if client_id:
            where.append("client_id = ?")
            args.append(client_id)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        return [Job.from_row(r) for r in self._all(sql, (*args, limit, offset))]

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._all("SELECT status, COUNT(*) FROM jobs GROUP BY status")}

    def unfinished(self) -> int:
        """Jobs queued or running (an index lookup, whatever the history's size)."""
        return self._count("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?, ?)", (QUEUED, *ACTIVE))

    def position(self, job: Job) -> int:
        """How many queued jobs are ahead of this one."""
        return self._count("SELECT COUNT(*) FROM jobs WHERE status = ? AND seq < ?", (QUEUED, job.seq))

    def claim(self, waiting: str | None = None) -> Job | None:
        """Atomically take the oldest queued job and mark it running; with `waiting` (the
        reason), waiting instead, until set_worker says its worker process has started it."""
        row = self._one(
            "UPDATE jobs SET status = ?, started = ?, worker = NULL, waiting = ?, attempts = attempts + 1 "
            "WHERE seq = (SELECT seq FROM jobs WHERE status = ? ORDER BY seq LIMIT 1) RETURNING *",
            (WAITING if waiting else RUNNING, time.time(), waiting, QUEUED),
        )
        return Job.from_row(row) if row else None

    def finish(self, job_id: str, status: str, result: dict[str, Any]) -> None:
        self._one(
            "UPDATE jobs SET status = ?, finished = ?, result = ?, waiting = NULL WHERE id = ? AND status IN (?, ?)",
            (status, time.time(), json.dumps(result), job_id, *ACTIVE),
        )

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False if it is not queued (any more)."""
        row = self._one(
            "UPDATE jobs SET status = ?, finished = ? WHERE id = ? AND status = ? RETURNING id",
            (CANCELLED, time.time(), job_id, QUEUED),
        )
        return row is not None

    def recover(
        self, requeue: bool, resumable: Callable[[str], bool] = lambda job_id: False
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        """At start-up: jobs left running (or waiting) by a crash become interrupted, or queued
        again (at most MAX_ATTEMPTS runs in all): all of them with `requeue`, else those that
        `resumable` says hold a checkpoint. Returns (interrupted ids, re-queued ids)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute("SELECT id, attempts FROM jobs WHERE status IN (?, ?)", ACTIVE).fetchall()
                requeued = [r["id"] for r in rows if (requeue or resumable(r["id"])) and r["attempts"] < MAX_ATTEMPTS]
                interrupted = [r["id"] for r in rows if r["id"] not in requeued]
                note = json.dumps({"error": {"message": "the server stopped while this job was running"}})
                for jid in interrupted:
                    self._db.execute(
                        "UPDATE jobs SET status = ?, finished = ?, result = ? WHERE id = ?",
                        (INTERRUPTED, time.time(), note, jid),
                    )
                for jid in requeued:
                    self._db.execute(
                        "UPDATE jobs SET status = ?, started = NULL, worker = NULL, waiting = ? WHERE id = ?",
                        (QUEUED, "re-queued after the server stopped", jid),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return interrupted, requeued

    def delete_finished(self, job_ids: builtins.list[str] | None) -> builtins.list[str]:
        """Delete these finished jobs (None: every finished job); return the ids deleted."""
        marks = ",".join("?" * len(FINISHED))
        if job_ids is None:
            rows = self._all(f"DELETE FROM jobs WHERE status IN ({marks}) RETURNING id", FINISHED)
        else:
            rows = [
                r
                for jid in job_ids
                for r in self._all(
                    f"DELETE FROM jobs WHERE id = ? AND status IN ({marks}) RETURNING id", (jid, *FINISHED)
                )
            ]
        return [r["id"] for r in rows]

    def prune(self, keep: int) -> builtins.list[str]:
        """Delete the oldest finished jobs beyond the newest `keep`; return their ids."""
        rows = self._all(
            f"SELECT id FROM jobs WHERE status IN ({','.join('?' * len(FINISHED))}) "
            "ORDER BY seq DESC LIMIT -1 OFFSET ?",
            (*FINISHED, keep),
        )
        ids = [r["id"] for r in rows]
        if ids:
            with self._lock:
                self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
        return ids
