"""The Ray actor: one nodeflow worker process on some machine of the cluster.

It keeps its Executor (memory cache, and the disk cache of its own machine) and the
node modules' model caches between jobs. A job is planned again here, with this
machine's devices, then run; its events stream back to the server while it runs
(a Ray streaming generator), and its output files come back with the result.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import queue
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nodeflow import events as ev
from nodeflow.cache import DiskCache, default_cache_dir
from nodeflow.context import CancelToken
from nodeflow.errors import GraphInvalid
from nodeflow.executor import Executor
from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import PREVIEW_MAX_SIDE, Throttle, relative_name
from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.planning import plan_request, summarize
from nodeflow.ray_backend.files import job_outputs, place_files
from nodeflow.registry import load_nodes

# What the generator yields: ("worker", info), ("event", Event), ("checkpoint", name, bytes),
# ("done", status, summary, files).
WORKER, EVENT, CHECKPOINT, DONE = "worker", "event", "checkpoint", "done"


def small_preview(image: Any) -> Any:
    """Every n-th pixel, so that a preview crossing the network is about 256 px."""
    import numpy as np

    a = np.asarray(image)
    if a.ndim < 2:
        return a
    step = max(1, math.ceil(max(a.shape[:2]) / PREVIEW_MAX_SIDE))
    return np.ascontiguousarray(a[::step, ::step])


class WorkerActor:
    """Wrapped by ray.remote in backend.py; runs one job at a time (plus cancel calls)."""

    def __init__(self, plugins: list[str], allow_downloads: bool):
        load_nodes()
        for name in plugins:  # the server operator's $NODEFLOW_PLUGINS, imported here too
            importlib.import_module(name)
        self.workdir = Path(tempfile.mkdtemp(prefix="nodeflow-worker-"))
        self.config = ServerConfig(data_dir=self.workdir, allow_downloads=allow_downloads)
        self.executor = Executor(disk=DiskCache(default_cache_dir()))
        self._tokens: dict[str, CancelToken] = {}

    def info(self) -> dict[str, Any]:
        import ray

        ctx = ray.get_runtime_context()
        return {
            "ray_node_id": ctx.get_node_id(),
            "ray_actor_id": ctx.get_actor_id(),
            "host": socket.gethostname(),
            "node_ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
        }

    def cancel(self, job_id: str) -> bool:
        token = self._tokens.get(job_id)
        if token is not None:
            token.cancel()
        return token is not None

    def run(
        self,
        job_id: str,
        request: dict[str, Any],
        inputs: dict[str, bytes],
        checkpoints: dict[str, bytes] | None = None,
        checkpoint_seconds: float | None = None,
    ) -> Iterator[tuple]:
        """Run a job; `checkpoints`: the job's checkpoint files on the server (it resumes from
        them), every checkpoint written here is yielded back. checkpoint_seconds: the server's
        interval (None: no checkpoints)."""
        yield (WORKER, self.info())
        token = self._tokens[job_id] = CancelToken()
        out_dir = self.config.job_output_dir(job_id)
        ckpt_dir = self.config.checkpoint_dir(job_id)
        place_files(ckpt_dir, checkpoints or {})
        items: queue.Queue = queue.Queue()
        thread = threading.Thread(
            target=self._work,
            args=(job_id, request, inputs, token, out_dir, items, checkpoint_seconds),
            name=f"nodeflow-job-{job_id[:8]}",
            daemon=True,
        )
        thread.start()
        try:
            while True:
                item = items.get()
                yield item
                if item[0] == DONE:
                    return
        finally:
            thread.join()
            self._tokens.pop(job_id, None)
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.rmtree(self.config.job_temp_dir(job_id), ignore_errors=True)
            shutil.rmtree(ckpt_dir, ignore_errors=True)

    def _work(
        self,
        job_id: str,
        request: dict,
        inputs: dict[str, bytes],
        token: CancelToken,
        out_dir: Path,
        items: queue.Queue,
        checkpoint_seconds: float | None = None,
    ) -> None:
        throttle = Throttle()
        temp = self.config.job_temp_dir(job_id)  # previews stay on this worker: named, not shipped

        def emit(event: ev.Event) -> None:
            if throttle.drops(event):
                return
            if isinstance(event, ev.NodePreview) and not event.full:
                event = dataclasses.replace(event, image=small_preview(event.image))
            elif isinstance(event, ev.NodeFinished):  # names in the job's folder, not paths here
                event = dataclasses.replace(event, outputs=[relative_name(p, out_dir, temp) for p in event.outputs])
            items.put((EVENT, event))

        try:
            place_files(self.config.input_dir, inputs)
            plan = plan_request(self.config, job_id, request)
            ckpts = plan.settings.checkpoints
            if checkpoint_seconds is None or ckpts is None:
                plan.settings.checkpoints = None
            else:
                ckpts.interval = checkpoint_seconds
                ckpts.saved = lambda name, data: items.put((CHECKPOINT, name, data))
            result = self.executor.run(plan, emit=emit, cancel=token, run_id=job_id)
            summary = summarize(job_id, result, out_dir, temp)
            items.put((DONE, result.status, summary, job_outputs(summary, out_dir)))
        except GraphInvalid as exc:  # e.g. this machine lacks a device the job needs
            items.put(
                (
                    DONE,
                    st.FAILED,
                    {
                        "nodes": {},
                        "outputs": [],
                        "issues": [i.to_dict() for i in exc.issues],
                        "error": {"message": "the graph is not valid on this worker"},
                    },
                    {},
                )
            )
        except Exception as exc:  # an engine bug must fail the job, not the worker
            items.put(
                (
                    DONE,
                    st.FAILED,
                    {"nodes": {}, "outputs": [], "error": {"message": f"{exc.__class__.__name__}: {exc}"}},
                    {},
                )
            )
