"""The server side: a warm pool of worker actors, one job per actor at a time.

The store stays the only queue: a worker thread that has claimed a job borrows an
idle actor of the right kind (GPU if the plan places a node on CUDA, else CPU), or
starts one; with --workers N there are never more than N actors. If the actor or
its machine dies mid-job, WorkerLost tells the pool to queue the job again.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import exceptions as rex

from nodeflow import events as ev
from nodeflow.context import CancelToken
from nodeflow.jobs import store as st
from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.download_env import policy_env
from nodeflow.jobs.worker import WorkerLost
from nodeflow.plan import Plan
from nodeflow.ray_backend.actor import DONE, EVENT, WORKER, WorkerActor
from nodeflow.ray_backend.files import job_inputs, place_files
from nodeflow.registry import load_nodes

# How long a cancelled job may take to stop before its actor is killed.
CANCEL_GRACE_SECONDS = 15.0
# The errors that mean the process or the machine running the job is gone.
LOST = (rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError)


def actor_resources(kind: str) -> dict[str, Any]:
    """Ray resources of one worker: a GPU for jobs placed on CUDA, a CPU otherwise, plus
    $NODEFLOW_RAY_RESOURCES (JSON, e.g. {"nodeflow": 1}) to pick the machines."""
    extra = json.loads(os.environ.get("NODEFLOW_RAY_RESOURCES") or "{}")
    opts: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1 if kind == "gpu" else 0}
    if extra:
        opts["resources"] = extra
    return opts


def actor_options(kind: str, allow_downloads: bool) -> dict[str, Any]:
    """How a worker actor starts: its resources, and the server's download policy in its
    environment, so that a worker neither downloads what the server refuses nor fails to
    fall back where the server's own worker would."""
    opts: dict[str, Any] = {"max_concurrency": 2, **actor_resources(kind)}
    env = policy_env(allow_downloads, dict(os.environ))
    if env:
        opts["runtime_env"] = {"env_vars": env}
    return opts


def unreachable(address: str) -> str | None:
    """Why the head at host:port can't be reached, or None. Checked first because
    ray.init keeps retrying an address that doesn't answer for minutes."""
    if address == "auto" or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            return None
    except (OSError, ValueError) as exc:
        return f"cannot reach the Ray cluster at {address!r} ({exc}); give the head's host:port, or auto"


class ActorPool:
    def __init__(self, size: int, create: Callable[[str], Any]):
        self.size, self.create = size, create
        self._lock = threading.Lock()
        self._idle: dict[str, list] = {"cpu": [], "gpu": []}
        self._count = 0

    def acquire(self, kind: str) -> Any:
        with self._lock:
            if self._idle[kind]:
                return self._idle[kind].pop()
            if self._count >= self.size:  # an idle worker of the other kind makes room
                other = self._idle["gpu" if kind == "cpu" else "cpu"]
                ray.kill(other.pop())
                self._count -= 1
            self._count += 1
        try:
            return self.create(kind)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise

    def release(self, kind: str, actor: Any) -> None:
        with self._lock:
            self._idle[kind].append(actor)

    def discard(self, actor: Any) -> None:
        with self._lock:
            self._count -= 1
        try:
            ray.kill(actor)
        except Exception:
            pass

    def close(self) -> None:
        with self._lock:
            actors = [a for idle in self._idle.values() for a in idle]
            self._idle = {"cpu": [], "gpu": []}
        for a in actors:
            try:
                ray.kill(a)
            except Exception:
                pass


class RayBackend:
    def __init__(self, config: ServerConfig):
        self.config = config
        kwargs: dict[str, Any] = {"namespace": "nodeflow", "log_to_driver": False, "logging_level": "warning"}
        if os.environ.get("NODEFLOW_RAY_NODE_IP"):
            kwargs["_node_ip_address"] = os.environ["NODEFLOW_RAY_NODE_IP"]
        ray.init(address=config.ray_address, **kwargs)
        resources = ray.cluster_resources()
        # Jobs are planned for the cluster's devices, not the server's.
        frameworks = {fw for cls in load_nodes().values() for fw in cls.frameworks}
        devices = {"cpu", "cuda"} if resources.get("GPU", 0) > 0 else {"cpu"}
        config.devices = {fw: set(devices) for fw in frameworks}
        self.remote_class = ray.remote(WorkerActor)
        self.pool = ActorPool(config.workers, self._start_actor)
        print(
            f"nodeflow: Ray cluster at {config.ray_address}: {resources.get('CPU', 0):g} CPU(s), "
            f"{resources.get('GPU', 0):g} GPU(s)",
            file=sys.stderr,
            flush=True,
        )

    def _start_actor(self, kind: str) -> Any:
        return self.remote_class.options(**actor_options(kind, self.config.allow_downloads)).remote(
            self.config.plugins, self.config.allow_downloads
        )

    def close(self) -> None:
        self.pool.close()
        ray.shutdown()

    def capacity(self, plans: list[Plan]) -> int:
        """How many of these plans' jobs the cluster can run at once: its GPUs if any plan
        uses CUDA, else its CPUs (and no more than the custom resources allow)."""
        kind = "gpu" if any(map(needs_gpu, plans)) else "cpu"
        want = actor_resources(kind)
        have = ray.cluster_resources()
        counts = [have.get("CPU", 0) / want["num_cpus"]]
        if want["num_gpus"]:
            counts.append(have.get("GPU", 0) / want["num_gpus"])
        counts += [have.get(name, 0) / amount for name, amount in want.get("resources", {}).items() if amount]
        return int(min(counts))

    def run(
        self,
        job: st.Job,
        plan: Plan,
        emitter: Callable[[ev.Event], None],
        token: CancelToken,
        started: Callable[[dict], None],
    ) -> tuple[str, dict[str, Any]]:
        """Run the job on an actor; (status, summary) as the local worker gives them.
        Raises WorkerLost when the actor or its machine died."""
        kind = "gpu" if needs_gpu(plan) else "cpu"
        inputs = job_inputs(plan, plan.settings.input_dir)
        out_dir = self.config.job_output_dir(job.id)
        actor = self.pool.acquire(kind)
        finished = threading.Event()
        watcher = threading.Thread(target=self._watch_cancel, args=(actor, job.id, token, finished), daemon=True)
        watcher.start()
        try:
            for ref in actor.run.remote(job.id, job.request, inputs):
                item = ray.get(ref)
                if item[0] == WORKER:
                    started(item[1])
                elif item[0] == EVENT:
                    emitter(relocated(item[1], out_dir))
                elif item[0] == DONE:
                    _, status, summary, files = item
                    place_files(out_dir, files)
                    self.pool.release(kind, actor)
                    return status, summary
            raise WorkerLost("the worker ended the job without a result")
        except LOST as exc:
            self.pool.discard(actor)
            if token.cancelled:  # killed because it did not stop in time
                return st.CANCELLED, {"nodes": {}, "outputs": [], "error": None}
            raise WorkerLost(f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        except BaseException:
            self.pool.discard(actor)
            raise
        finally:
            finished.set()

    def _watch_cancel(self, actor: Any, job_id: str, token: CancelToken, finished: threading.Event) -> None:
        """Pass a cancel on to the actor; kill it if the job hasn't stopped after a grace period."""
        while not finished.is_set():
            if token.wait(0.1):
                actor.cancel.remote(job_id)
                if not finished.wait(CANCEL_GRACE_SECONDS):
                    ray.kill(actor)
                return


def needs_gpu(plan: Plan) -> bool:
    return any(p.device.startswith("cuda") for p in plan.nodes.values())


def relocated(event: ev.Event, out_dir: Path) -> ev.Event:
    """A worker names its files relative to the job's folder: put them in the server's."""
    if isinstance(event, ev.NodeFinished):
        import dataclasses

        return dataclasses.replace(event, outputs=[str(out_dir / name) for name in event.outputs])
    return event
