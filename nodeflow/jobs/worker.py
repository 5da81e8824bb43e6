"""Worker threads: claim a job, plan it again, run it on the one shared Executor.

The Executor (its memory cache and its disk cache) and every model cache in the
node modules live in this process, so all jobs share them.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
import traceback
from typing import Any

from nodeflow.cache import disk_budget
from nodeflow.context import CancelToken
from nodeflow.errors import GraphInvalid
from nodeflow.executor import Executor
from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import TERMINAL, Broker, JobEmitter
from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.planning import plan_request, summarize
from nodeflow.jobs.scrub import Scrubber

POLL_SECONDS = 0.5
DISK_PRUNE_SECONDS = 60.0


class WorkerLost(Exception):
    """The process that ran a job died (a Ray actor, or its machine): the job may run again."""


class NoWorker(Exception):
    """No worker process could be had for the job in time (none placed on the cluster): it goes
    back to the queue without using up an attempt."""


class WorkerPool:
    def __init__(
        self,
        config: ServerConfig,
        store: st.JobStore,
        broker: Broker,
        executor: Executor,
        backend: Any = None,
        scrub: Scrubber | None = None,
    ):
        """backend: runs a job's plan elsewhere (the Ray backend) instead of on `executor`."""
        self.config, self.store, self.broker, self.executor = config, store, broker, executor
        self.backend = backend
        self.groups: Any = None  # groups.Groups: told when a job ends
        self.scrub = scrub or Scrubber(config.data_dir)
        self._lock = threading.Lock()  # claim + token registration vs. cancel
        self._tokens: dict[str, CancelToken] = {}
        self._live: dict[str, JobEmitter] = {}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._disk_pruned = float("-inf")

    def start(self) -> None:
        for i in range(self.config.workers):
            t = threading.Thread(target=self._loop, name=f"nodeflow-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking jobs and cancel the running ones. They stay 'running' in the
        store, so the next start-up marks them interrupted (or re-queues them)."""
        self._stop.set()
        with self._lock:
            for token in self._tokens.values():
                token.cancel()
        self.notify()
        for t in self._threads:
            t.join(timeout)
        if self.backend is not None:
            self.backend.close()

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def live_nodes(self, job_id: str) -> dict[str, dict] | None:
        emitter = self._live.get(job_id)
        return self.scrub.deep(emitter.snapshot()) if emitter else None

    def memory_cache_stats(self) -> dict[str, int]:
        mem = self.executor.memory
        return {"items": len(mem), "bytes": mem.used, "budget_bytes": mem.max_bytes}

    def enqueue(self, request: dict[str, Any], client_id: str | None, job_id: str) -> st.Job:
        """Queue a request that plan_request accepted, and wake a worker."""
        job = self.store.add(request, client_id, job_id)
        self.broker.publish(job.id, {"event": "job_queued", "client_id": job.client_id})
        self.notify()
        return job

    def cancel(self, job_id: str) -> str | None:
        """'cancelled' (it was queued), 'cancelling' (it stops at its next check), or None."""
        with self._lock:
            cancelled = self.store.cancel_queued(job_id)
            token = self._tokens.get(job_id)
            if token is not None and not cancelled:
                token.cancel()
                return "cancelling"
        if cancelled:
            self.broker.publish(job_id, {"event": TERMINAL, "status": st.CANCELLED})
            self._ended(job_id)
            return st.CANCELLED
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                # A job for the Ray backend waits until an actor has started it.
                job = self.store.claim("waiting for a worker" if self.backend is not None else None)
                token = CancelToken()
                if job is not None:
                    self._tokens[job.id] = token
            if job is None:
                with self._wake:
                    self._wake.wait(POLL_SECONDS)
                continue
            try:
                self._run(job, token)
            except Exception:  # a store or broker failure: report it, keep the worker alive
                traceback.print_exc()
                try:
                    self.store.finish(job.id, st.FAILED, {"error": {"message": "internal error; see the server log"}})
                except Exception:
                    traceback.print_exc()
            finally:
                with self._lock:
                    self._tokens.pop(job.id, None)
                self._live.pop(job.id, None)

    def _run(self, job: st.Job, token: CancelToken) -> None:
        out_dir = self.config.job_output_dir(job.id)
        emitter = JobEmitter(self.broker, job.id, out_dir, self.config.job_temp_dir(job.id))
        self._live[job.id] = emitter
        self.broker.publish(job.id, {"event": "job_started", "attempt": job.attempts})
        try:
            plan = plan_request(self.config, job.id, job.request)
        except GraphInvalid as exc:  # e.g. an input file deleted since the submit
            issues = [i.to_dict() for i in exc.issues]
            self._finish(
                job.id,
                st.FAILED,
                {"nodes": {}, "outputs": [], "issues": issues, "error": {"message": "the graph is no longer valid"}},
            )
            return
        try:
            if self.backend is not None:
                status, summary = self.backend.run(
                    job,
                    plan,
                    emitter,
                    token,
                    lambda info: self.store.set_worker(job.id, info),
                    waiting=lambda reason: self.store.set_waiting(job.id, reason),
                )
            else:
                self.store.set_worker(
                    job.id,
                    {"host": socket.gethostname(), "pid": os.getpid(), "thread": threading.current_thread().name},
                )
                result = self.executor.run(plan, emit=emitter, cancel=token, run_id=job.id)
                status, summary = result.status, summarize(job.id, result, out_dir, self.config.job_temp_dir(job.id))
        except WorkerLost as exc:
            self._lost(job, str(exc))
            return
        except NoWorker as exc:
            if self.store.requeue(job.id, str(exc), count=False):
                self.broker.publish(job.id, {"event": "job_requeued", "attempt": job.attempts - 1, "reason": str(exc)})
            self._stop.wait(POLL_SECONDS)
            return
        except Exception as exc:  # an engine bug must fail the job, not the worker
            self._finish(
                job.id,
                st.FAILED,
                {"nodes": {}, "outputs": [], "error": {"message": f"{exc.__class__.__name__}: {exc}"}},
            )
            return
        if status == st.CANCELLED and self._stop.is_set():
            return  # server shutting down: left 'running' for recovery at the next start
        self._finish(job.id, status, summary)

    def _lost(self, job: st.Job, reason: str) -> None:
        """Its worker died: queue it again in its old place, unless it has used up its
        attempts (a job that keeps killing workers must not kill them forever)."""
        note = f"re-queued: its worker was lost ({reason})"
        print(f"nodeflow: job {job.id} (attempt {job.attempts}): its worker was lost: {reason}", file=sys.stderr)
        if job.attempts < st.MAX_ATTEMPTS and self.store.requeue(job.id, note):
            self.broker.publish(job.id, {"event": "job_requeued", "attempt": job.attempts, "reason": reason})
            self.notify()
            return
        self._finish(
            job.id,
            st.FAILED,
            {
                "nodes": {},
                "outputs": [],
                "error": {"message": f"its worker died {job.attempts} time(s) while running it; last: {reason}"},
            },
        )

    def _finish(self, job_id: str, status: str, result: dict[str, Any]) -> None:
        result = self.scrub.deep(result)
        # Room first: once the job shows as finished, the history is already within its limit.
        self._prune_history(self.config.history_limit - 1)
        self.store.finish(job_id, status, result)
        self.broker.publish(
            job_id, {"event": TERMINAL, "status": status, "error": (result.get("error") or {}).get("message")}
        )
        self._ended(job_id)
        self.prune()

    def forget_finished(self, job_ids: list[str] | None) -> None:
        """Delete finished jobs (None: all of them) with their outputs."""
        for job_id in self.store.delete_finished(job_ids):
            self._forget(job_id)
        self._prune_groups()

    def _forget(self, job_id: str) -> None:
        shutil.rmtree(self.config.job_output_dir(job_id), ignore_errors=True)
        shutil.rmtree(self.config.job_temp_dir(job_id), ignore_errors=True)
        shutil.rmtree(self.config.checkpoint_dir(job_id), ignore_errors=True)
        self.broker.forget(job_id)

    def _ended(self, job_id: str) -> None:
        shutil.rmtree(self.config.checkpoint_dir(job_id), ignore_errors=True)  # nothing to resume any more
        if self.groups is not None:
            self.groups.job_ended(job_id)

    def _prune_groups(self) -> None:
        for group_id in self.store.prune_groups():  # sweeps none of whose jobs are kept
            shutil.rmtree(self.config.job_output_dir(group_id), ignore_errors=True)

    def _prune_history(self, keep: int) -> None:
        for job_id in self.store.prune(keep):
            self._forget(job_id)
        self._prune_groups()

    def prune(self) -> None:
        """Keep the history within its limit, and the disk cache within its budget
        ($NODEFLOW_DISK_CACHE_GB; checked at most once a minute: it walks the cache)."""
        self._prune_history(self.config.history_limit)
        now = time.monotonic()
        with self._lock:
            due = now - self._disk_pruned >= DISK_PRUNE_SECONDS
            if due:
                self._disk_pruned = now
        if due and self.executor.disk is not None:
            self.executor.disk.prune(disk_budget())
