"""The services every route shares, kept on `app.state` (routes reach them through deps.py):

  config   the ServerConfig                  scrub    the Scrubber of the data dir's paths
  broker   the event broker (progress)       recent   the jobs /prompt just queued
  store    the persistent job store          pool     the worker pool (or the Ray backend's)
  groups   sweep groups

The first four exist from create_app on; the store, the pool and the groups are opened by the
lifespan, when the server starts, and closed when it stops.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from nodeflow.cache import DiskCache
from nodeflow.comfy.history import RecentJobs
from nodeflow.executor import Executor
from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import Broker
from nodeflow.jobs.config import ServerConfig, make_private
from nodeflow.jobs.groups import Groups
from nodeflow.jobs.planning import has_checkpoint, plan_request
from nodeflow.jobs.scrub import Scrubber
from nodeflow.jobs.worker import WorkerPool

from .comfy.frontend import editor_dir


def attach(app: FastAPI, config: ServerConfig) -> None:
    """The services that need no start-up."""
    app.state.config = config
    app.state.scrub = scrub = Scrubber(config.data_dir)
    app.state.broker = Broker(clean=scrub.deep)
    app.state.recent = RecentJobs()


def requeue_active(store: st.JobStore, reason: str) -> int:
    """Put every job that is waiting or running back in the queue (their workers are gone)."""
    jobs = store.list(st.ACTIVE, limit=100_000)
    return sum(store.requeue(j.id, reason) for j in jobs if j.attempts < st.MAX_ATTEMPTS)


def drop_stale_checkpoints(config: ServerConfig, store: st.JobStore) -> None:
    """Checkpoints of jobs that will not run again (ended, deleted) go."""
    import shutil

    if not config.checkpoint_root.is_dir():
        return
    for folder in config.checkpoint_root.iterdir():
        job = store.get(folder.name)
        if job is None or job.status not in (st.QUEUED, *st.ACTIVE):
            shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the data dir, recover the store, start the workers; stop them at the end."""
    config: ServerConfig = app.state.config
    make_private(config.data_dir)
    shutil.rmtree(config.temp_root, ignore_errors=True)  # previews of an earlier run: nobody keeps them
    for d in (config.input_dir, config.output_root, config.cache_dir, editor_dir(config) / "userdata" / "workflows"):
        d.mkdir(parents=True, exist_ok=True)
    store = st.JobStore(config.db_path)
    # A job that holds a checkpoint resumes from it: re-queued even without --requeue-interrupted.
    interrupted, requeued = store.recover(config.requeue_interrupted, lambda job_id: has_checkpoint(config, job_id))
    if interrupted or requeued:
        print(
            f"nodeflow: {len(interrupted)} job(s) interrupted by the last stop"
            + (f", {len(requeued)} re-queued (resuming from a checkpoint where they hold one)" if requeued else ""),
            file=sys.stderr,
        )
    drop_stale_checkpoints(config, store)
    backend = None
    if config.ray_address:
        from nodeflow.ray_backend import RayBackend  # Ray is imported only here

        backend = await asyncio.to_thread(RayBackend, config)
        backend.on_lost = lambda: requeue_active(store, "re-queued: the server lost its Ray node")
    executor = Executor(disk=DiskCache(config.cache_dir), trim=True)
    pool = WorkerPool(config, store, app.state.broker, executor, backend, app.state.scrub)
    pool.groups = groups = Groups(config, store, plan_request)
    app.state.store, app.state.pool, app.state.groups = store, pool, groups
    for group_id in store.unfinished_groups():  # its last job ended just before a crash
        groups.finish_if_done(group_id)
    pool.prune()  # the history limit may have been lowered since the last run
    pool.start()
    try:
        yield
    finally:
        await asyncio.to_thread(pool.stop)
        store.close()
        print("nodeflow: stopped", file=sys.stderr, flush=True)
