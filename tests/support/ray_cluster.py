"""A Ray cluster of several nodes on this machine, confined to loopback.

Everything runs inside one child process started by in_namespace(): a new network
namespace that has only `lo` (nothing outside can reach in, nothing inside can reach
out) and a new PID namespace, so that when that process ends, the kernel ends every
Ray process it started. Ray uses token authentication (RAY_AUTH_MODE=token).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.paths import PLUGINS, ROOT

# Each node: one CPU, a resource that says it may run nodeflow workers, and its name.
WORKER_RESOURCE = "nodeflow_worker"


def why_no_namespace() -> str | None:
    """Why Ray tests can't run here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the Ray tests need root, to run the cluster in a loopback-only network namespace (unshare -n)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "the Ray tests need `unshare` and `ip` (util-linux, iproute2) for a loopback-only network namespace"
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (pip install -e '.[ray]')"
    return None


def in_namespace(argv: list[str]) -> list[str]:
    """argv, run in new network and PID namespaces with only loopback up."""
    # --kill-child: if unshare itself is killed (a test timeout), the namespace goes too.
    return [
        "unshare",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
        "-c",
        "ip link set lo up && exec " + shlex.join(argv),
    ]


def ray_exe() -> str:
    local = Path(sys.executable).parent / "ray"
    return str(local) if local.exists() else "ray"


class LocalCluster:
    """`ray start --head`, then `ray start --address` for each further node (call inside
    the namespace). Sets the auth token and the workers' environment in os.environ."""

    def __init__(self, nodes: int = 2, port: int = 6390):
        self.nodes, self.port = nodes, port
        # Unix socket paths must stay short: a temp dir right under /tmp.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="nfray", dir="/tmp"))
        self.address = f"127.0.0.1:{port}"
        self.log = self.temp_dir / "ray-start.log"

    def start(self, timeout: float = 300) -> LocalCluster:
        os.environ.update(
            {
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": secrets.token_hex(24),
                "RAY_USAGE_STATS_ENABLED": "0",
                # The worker processes inherit these from `ray start`.
                "NODEFLOW_CACHE_DIR": str(self.temp_dir / "worker-cache"),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(PLUGINS), os.environ.get("PYTHONPATH")])),
            }
        )
        common = [
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
            "--object-store-memory",
            str(150 << 20),
            "--disable-usage-stats",
        ]
        for i in range(self.nodes):
            where = (
                ["--head", "--port", str(self.port), "--include-dashboard=false", "--temp-dir", str(self.temp_dir)]
                if i == 0
                else ["--address", self.address]
            )
            resources = json.dumps({WORKER_RESOURCE: 1, f"node_{i}": 1})
            with open(self.log, "ab") as log:
                subprocess.run(
                    [ray_exe(), "start", *where, *common, "--resources", resources],
                    check=True,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
        return self

    def add_node(self, ip: str = "127.0.0.1", cpus: int = 1, resources: dict | None = None) -> None:
        """One more node (ip: another loopback address, 127.0.0.2, makes it a machine of its own
        for the drivers that attach to it)."""
        extra = ["--resources", json.dumps(resources)] if resources else []
        with open(self.log, "ab") as log:
            subprocess.run(
                [ray_exe(), "start", "--address", self.address, "--node-ip-address", ip, "--num-cpus", str(cpus)]
                + ["--object-store-memory", str(150 << 20), "--disable-usage-stats", *extra],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
            )

    def stop(self) -> None:
        """Inside the PID namespace `ray stop` sees only this cluster's processes."""
        try:
            with open(self.log, "ab") as log:
                subprocess.run([ray_exe(), "stop", "--force"], stdout=log, stderr=subprocess.STDOUT, timeout=60)
        except (subprocess.SubprocessError, OSError):
            pass


def raylet_pid(node_id: str) -> int | None:
    """The raylet of the node whose id starts with node_id (inside the namespace), or None."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"raylet") and any(a.startswith(f"--node_id={node_id}".encode()) for a in cmd):
            return int(pid)
    return None


def kill_node(node_id: str) -> int:
    """kill -9 a node's raylet and the workers it started (the machine "dies"); returns the raylet's pid."""
    import signal

    pid = raylet_pid(node_id)
    if pid is None:
        raise AssertionError(f"no raylet of node {node_id}")
    children = []
    for other in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{other}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # its parent is the raylet
            children.append(int(other))
    for p in [pid, *children]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pid


def run_in_namespace(script: Path, result: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """Run `python script result args...` in the namespaces; returns when it (and with it,
    every process it started) has ended."""
    argv = in_namespace([sys.executable, str(script), str(result), *args])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    proc.seconds = time.monotonic() - start  # type: ignore[attr-defined]
    return proc
