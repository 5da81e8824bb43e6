"""Starts the real server (`python server.py`) in a subprocess on a free loopback
port, with the test plugin module (a slow node) loaded through $NODEFLOW_PLUGINS; and the
HTTP helpers the server tests share (they take any httpx-style client: a live server's or
the in-process TestClient of support.inprocess)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.paths import ASSETS, PLUGINS, ROOT

FINISHED = {"succeeded", "failed", "cancelled", "interrupted"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self,
        data_dir: Path,
        *args: str,
        token: str | None = None,
        env: dict | None = None,
        base_env: dict | None = None,
    ):
        """`env` adds to `base_env` (default: this process's environment when it starts)."""
        self.data_dir = Path(data_dir)
        self.args = list(args)
        self.token = token
        self.env = env or {}
        self.base_env = base_env
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.data_dir.parent / f"server-{self.data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            str(ROOT / "server.py"),
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *self.args,
            *extra,
        ]

    def environ(self) -> dict:
        env = dict(os.environ if self.base_env is None else self.base_env, NODEFLOW_PLUGINS="slow_nodes", **self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
        if self.token:
            env["NODEFLOW_TOKEN"] = self.token
        else:
            env.pop("NODEFLOW_TOKEN", None)
        return env

    def start(self, timeout: float = 90) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.environ(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str | None = "default") -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


class LiveServers:
    """The test session's running servers (the `servers` fixture): one process per
    configuration, started on first use and kept for the whole session, for every test
    that needs a live socket (SSE, WebSockets, a browser, the process's log or memory).
    name= keeps a process apart from the others of the same configuration (the abuse set
    has its own). Tests that kill or restart a server start their own (`own_server`)."""

    SEEDED = ("astronaut.png", "starry_night.jpg")  # in every shared server's inputs folder

    def __init__(self, root: Path, environ: dict[str, str]):
        """`environ`: what every shared server starts with (plus its own `env`): the session's
        environment, not whatever a test or an in-process app has patched when one asks."""
        self.root = Path(root)
        self._shared: dict[tuple, Server] = {}
        self.environ = dict(environ)

    def shared(self, *args: str, token: str | None = None, env: dict | None = None, name: str = "shared") -> Server:
        key = (name, args, token, tuple(sorted((env or {}).items())))
        srv = self._shared.get(key)
        if srv is None:
            data = self.root / f"{name}-{len(self._shared)}" / "data"
            (data / "inputs").mkdir(parents=True)
            for image in self.SEEDED:
                (data / "inputs" / image).write_bytes((ASSETS / image).read_bytes())
            srv = Server(data, *args, token=token, env=env, base_env=self.environ)
            self._shared[key] = srv.start()
        elif srv.proc is None or srv.proc.poll() is not None:
            raise AssertionError(f"the shared server {key} has exited:\n{srv.log.read_text()[-4000:]}")
        return srv

    def stop_all(self) -> None:
        for srv in self._shared.values():
            srv.stop()


def upload(client: httpx.Client, name: str = "astronaut.png") -> str:
    with open(ASSETS / name, "rb") as f:
        r = client.post("/uploads", files={"file": (name, f, "application/octet-stream")})
    assert r.status_code == 201, r.text
    return r.json()["name"]


def small_graph(path: str, filename: str = "small.png", max_size: int = 32) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": path, "max_size": max_size}},
            "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": filename}},
        }
    }


def slow_graph(path: str, steps: int = 200, delay: float = 0.05, gate: Path | None = None) -> dict:
    """Load, SlowInvert, Save. With `gate`, the slow node waits until that file exists:
    the job stays running until the test calls open_gate(gate)."""
    slow = {"image": {"from": "load.image"}, "steps": steps, "delay": delay}
    if gate is not None:
        slow["gate"] = str(gate)
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": path, "max_size": 32}},
            "slow": {"type": "SlowInvert", "inputs": slow},
            "save": {"type": "Save", "inputs": {"image": {"from": "slow.image"}, "filename": "slow.png"}},
        }
    }


def open_gate(gate: Path) -> None:
    gate.write_bytes(b"")


def wait_node_started(client: httpx.Client, job_id: str, node: str = "slow") -> list[dict]:
    """Follow the job's events until `node` has started (the job is claimed and running);
    returns the events seen."""
    seen = []
    for e in events(
        client,
        f"/jobs/{job_id}/events",
        timeout=60,
        stop=lambda e: e["event"] in ("node_started", "job_finished") and e.get("node", node) == node,
    ):
        seen.append(e)
    assert seen and seen[-1]["event"] == "node_started", seen
    return seen


def submit(client: httpx.Client, graph: dict, **body) -> str:
    r = client.post("/jobs", json={"graph": graph, **body})
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120, until=FINISHED) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(0.1)


def events(client: httpx.Client, path: str, stop=lambda e: False, timeout: float = 120):
    """Yield the SSE messages of `path` (parsed JSON) until the stream ends or stop(e).
    Fails once `timeout` seconds have passed in all (keep-alives arrive every 15 s)."""
    deadline = time.monotonic() + timeout
    with client.stream("GET", path, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: the stream was still open after {timeout}s")
            if line.startswith("data: "):
                e = json.loads(line[6:])
                yield e
                if stop(e):
                    return
