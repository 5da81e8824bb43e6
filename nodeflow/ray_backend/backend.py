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
import time
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
from nodeflow.jobs.worker import NoWorker, WorkerLost
from nodeflow.plan import Plan
from nodeflow.ray_backend.actor import CHECKPOINT, DONE, EVENT, WORKER, WorkerActor
from nodeflow.ray_backend.files import job_inputs, place_files
from nodeflow.registry import load_nodes

# How long a cancelled job may take to stop before its actor is killed.
CANCEL_GRACE_SECONDS = 15.0
# The errors that mean the process or the machine running the job is gone.
LOST = (rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError)
# How long a job waits for Ray to place a new worker before it goes back to the queue
# ($NODEFLOW_RAY_PLACE_SECONDS); meanwhile it takes any worker that falls idle.
PLACE_SECONDS = float(os.environ.get("NODEFLOW_RAY_PLACE_SECONDS") or 120)
# How long an idle worker may take to answer before it counts as lost.
PING_SECONDS = 10.0
# How often the server checks that its own Ray node is alive.
SUPERVISE_SECONDS = 0.5


class _CancelledWhileWaiting(Exception):
    pass


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

    def acquire(
        self,
        kind: str,
        token: CancelToken | None = None,
        waiting: Callable[[str], None] = lambda reason: None,
        deadline_s: float | None = None,
    ) -> Any:
        """A live worker of this kind: an idle one (checked alive first), or a new one once Ray
        has placed it; whichever comes first, so a job never waits for a placement while a
        worker falls idle. Tells `waiting` why, once, when it has to wait. Raises NoWorker
        when none could be had within deadline_s (PLACE_SECONDS)."""
        deadline = time.monotonic() + (PLACE_SECONDS if deadline_s is None else deadline_s)
        pending: Any = None
        ready: Any = None
        told = False
        try:
            while True:
                actor = self._take_idle(kind)
                if actor is not None:
                    return actor
                if pending is None:
                    waiting(f"waiting for a {kind.upper()} on the cluster")
                    told = True
                    pending = self._start(kind)
                    ready = pending.info.remote()
                done, _ = ray.wait([ready], timeout=0.25)
                if done:
                    try:
                        ray.get(ready)
                        actor, pending = pending, None
                        return actor
                    except LOST:  # placed on a machine that died: try again
                        self.discard(pending)
                        pending = None
                        continue
                if not told:
                    waiting(f"waiting for a {kind.upper()} on the cluster")
                    told = True
                if token is not None and token.cancelled:
                    raise _CancelledWhileWaiting
                if time.monotonic() > deadline:
                    raise NoWorker(
                        f"no {kind.upper()} worker could be placed on the Ray cluster in "
                        f"{PLACE_SECONDS if deadline_s is None else deadline_s:g} s; re-queued"
                    )
        finally:
            if pending is not None:
                self.discard(pending)

    def _take_idle(self, kind: str) -> Any:
        """An idle worker of this kind that answers; dead ones are dropped."""
        while True:
            with self._lock:
                if not self._idle[kind]:
                    return None
                actor = self._idle[kind].pop()
            try:
                done, _ = ray.wait([actor.info.remote()], timeout=PING_SECONDS)
                if done:
                    ray.get(done[0])
                    return actor
            except LOST:
                pass
            self.discard(actor)

    def _start(self, kind: str) -> Any:
        """Start a worker; idle ones of the other kind make room (at the pool's size, and
        because they hold a CPU or GPU the new one may need)."""
        with self._lock:
            other = self._idle["gpu" if kind == "cpu" else "cpu"]
            victims = list(other)
            other.clear()
            self._count -= len(victims)
            self._count += 1
        for a in victims:
            try:
                ray.kill(a)
            except Exception:
                pass
        try:
            return self.create(kind)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise

    def reset(self) -> None:
        """Forget every worker (the connection to the cluster was made again)."""
        with self._lock:
            self._idle = {"cpu": [], "gpu": []}
            self._count = 0

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
    def __init__(self, config: ServerConfig, role: str = "server"):
        """role: what this process is, for its messages (the server, or a CLI run)."""
        self.config, self.role = config, role
        # Called before the process exits because its Ray node was lost (the server re-queues
        # its running jobs); returns how many it re-queued.
        self.on_lost: Callable[[], int] | None = None
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
        self.node_id = ray.get_runtime_context().get_node_id()
        node: dict[str, Any] = next((n for n in ray.nodes() if n.get("NodeID") == self.node_id), {})
        head = bool(node.get("Resources", {}).get("node:__internal_head__"))
        print(
            f"nodeflow: Ray cluster at {config.ray_address}: {resources.get('CPU', 0):g} CPU(s), "
            f"{resources.get('GPU', 0):g} GPU(s); attached to node {self.node_id[:12]} "
            f"({node.get('NodeManagerAddress', '?')}{', the head' if head else ''})",
            file=sys.stderr,
            flush=True,
        )
        self._closing = threading.Event()
        self._raylet = raylet_pid(self.node_id)
        threading.Thread(target=self._supervise, name="nodeflow-ray-supervisor", daemon=True).start()

    def _supervise(self) -> None:
        """The server's own Ray node is its connection to the cluster: when it dies, Ray ends
        this process without a word in the server's log. Say why first, in one line, and exit
        with status 3 (a service manager restarts the server, which re-queues its jobs)."""
        checks = silent = 0
        while not self._closing.wait(SUPERVISE_SECONDS):
            checks += 1
            reason = None
            if self._raylet is not None and not pid_alive(self._raylet):
                reason = f"its raylet (pid {self._raylet}) ended"
            elif checks % 10 == 0:  # every few seconds, ask the cluster too
                try:
                    alive = {n["NodeID"]: n.get("Alive") for n in ray.nodes()}
                    silent = 0
                    if not alive.get(self.node_id, False):
                        reason = "the cluster reports it dead"
                except Exception as exc:
                    silent += 1  # a passing hiccup is not a loss: three checks in a row
                    if silent >= 3:
                        reason = f"the cluster does not answer ({exc.__class__.__name__})"
            if reason is not None and not self._closing.is_set():
                requeued = 0
                if self.on_lost is not None:
                    try:
                        requeued = self.on_lost()
                    except Exception:
                        pass
                print(
                    f"nodeflow: lost the Ray node this {self.role} is attached to (node {self.node_id[:12]}): "
                    f"{reason}; exiting (status 3)"
                    + (
                        f"; {requeued} running job(s) re-queued: they run when the server is started again "
                        "(on a machine with a live Ray node)"
                        if self.role == "server"
                        else ""
                    ),
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(3)

    def _start_actor(self, kind: str) -> Any:
        return self.remote_class.options(**actor_options(kind, self.config.allow_downloads)).remote(
            self.config.plugins, self.config.allow_downloads
        )

    def close(self) -> None:
        self._closing.set()
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
        waiting: Callable[[str], None] = lambda reason: None,
    ) -> tuple[str, dict[str, Any]]:
        """Run the job on an actor; (status, summary) as the local worker gives them.
        Raises WorkerLost when the actor or its machine died, NoWorker when no actor could
        be placed in time. The job's checkpoints go to the actor with it, and every
        checkpoint the actor writes comes back into the job's folder here."""
        kind = "gpu" if needs_gpu(plan) else "cpu"
        inputs = job_inputs(plan, plan.settings.input_dir)
        out_dir = self.config.job_output_dir(job.id)
        ckpt_dir = self.config.checkpoint_dir(job.id)
        try:
            actor = self.pool.acquire(kind, token, waiting)
        except _CancelledWhileWaiting:
            return st.CANCELLED, {"nodes": {}, "outputs": [], "error": None}
        checkpoints = {p.name: p.read_bytes() for p in sorted(ckpt_dir.glob("*.ckpt"))} if ckpt_dir.is_dir() else {}
        interval = plan.settings.checkpoints.interval if plan.settings.checkpoints is not None else None
        finished = threading.Event()
        watcher = threading.Thread(target=self._watch_cancel, args=(actor, job.id, token, finished), daemon=True)
        watcher.start()
        try:
            for ref in actor.run.remote(job.id, job.request, inputs, checkpoints, interval):
                item = ray.get(ref)
                if item[0] == WORKER:
                    started(item[1])
                elif item[0] == CHECKPOINT:
                    place_files(ckpt_dir, {item[1]: item[2]})
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


def raylet_pid(node_id: str) -> int | None:
    """The pid of this machine's raylet of that node (Linux: /proc), or None."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    flag = f"--node_id={node_id}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"raylet" in cmd.split(b"\0", 1)[0] and flag in cmd:
            return int(entry.name)
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie has ended
        return stat.read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def needs_gpu(plan: Plan) -> bool:
    return any(p.device.startswith("cuda") for p in plan.nodes.values())


def relocated(event: ev.Event, out_dir: Path) -> ev.Event:
    """A worker names its files relative to the job's folder: put them in the server's."""
    if isinstance(event, ev.NodeFinished):
        import dataclasses

        return dataclasses.replace(event, outputs=[str(out_dir / name) for name in event.outputs])
    return event
