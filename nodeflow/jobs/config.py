"""Server settings: one data directory holds the queue, uploads, outputs and the disk cache."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8188


def default_data_dir() -> Path:
    env = os.environ.get("NODEFLOW_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("nodeflow")) / "server"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"nodeflow serve: ${name} must be an integer, got {raw!r}") from None


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    workers: int = 1
    requeue_interrupted: bool = False
    # Finished jobs kept (with their outputs); older ones are deleted.
    history_limit: int = field(default_factory=lambda: _env_int("NODEFLOW_HISTORY_LIMIT", 1000))
    # Request bodies: graphs are small; uploads are images.
    max_body_bytes: int = field(default_factory=lambda: _env_int("NODEFLOW_MAX_BODY_KB", 1024) * 1024)
    max_upload_bytes: int = field(default_factory=lambda: _env_int("NODEFLOW_MAX_UPLOAD_MB", 25) << 20)
    max_upload_pixels: int = field(default_factory=lambda: _env_int("NODEFLOW_MAX_UPLOAD_MPIX", 50) * 1_000_000)
    # May a graph make the server download (LoadImage url, VGG weights, TF Hub, SD models)?
    # Off unless the operator says so (--allow-downloads, $NODEFLOW_DOWNLOADS=1).
    allow_downloads: bool = field(default_factory=lambda: os.environ.get("NODEFLOW_DOWNLOADS", "0") == "1")
    # Serve the web editor's files compressed and with cache headers ($NODEFLOW_EDITOR_CACHING=0:
    # as plain static files, the baseline of bench/comfy.py).
    editor_caching: bool = field(default_factory=lambda: os.environ.get("NODEFLOW_EDITOR_CACHING", "1") != "0")
    # Most variations one sweep may queue.
    sweep_limit: int = field(default_factory=lambda: _env_int("NODEFLOW_SWEEP_LIMIT", 64))
    # Operator-named node modules imported at start-up (never named by a client).
    plugins: list[str] = field(default_factory=lambda: _env_list("NODEFLOW_PLUGINS"))
    # Host names the server answers to besides loopback and the bound host ("*": any);
    # origins allowed to make cross-site requests (e.g. a front end served elsewhere).
    allowed_hosts: list[str] = field(default_factory=lambda: _env_list("NODEFLOW_ALLOWED_HOSTS"))
    allowed_origins: list[str] = field(default_factory=lambda: _env_list("NODEFLOW_ALLOWED_ORIGINS"))

    # The input folder: uploads go there and every input path a graph names resolves inside it
    # (--input-dir); None: <data dir>/inputs.
    inputs: Path | None = None

    # The Ray cluster that runs the jobs (--ray, $NODEFLOW_RAY_ADDRESS); None: worker threads here.
    ray_address: str | None = None
    # {framework: devices} jobs are planned for; None: what this machine has. With Ray,
    # the cluster's: a job placed on CUDA asks Ray for a GPU.
    devices: dict[str, set[str]] | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.inputs is not None:
            self.inputs = Path(self.inputs)

    @property
    def input_dir(self) -> Path:
        return self.inputs if self.inputs is not None else self.data_dir / "inputs"

    @property
    def output_root(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "jobs.sqlite"

    def job_output_dir(self, job_id: str) -> Path:
        return self.output_root / job_id

    @property
    def temp_root(self) -> Path:
        """Preview images (ComfyUI's temp folder): emptied at start-up and with each job."""
        return self.data_dir / "temp"

    def job_temp_dir(self, job_id: str) -> Path:
        return self.temp_root / job_id

    @property
    def checkpoint_root(self) -> Path:
        return self.data_dir / "checkpoints"

    def checkpoint_dir(self, job_id: str) -> Path:
        """A job's checkpoints (its long nodes' saved work): kept until the job ends."""
        return self.checkpoint_root / job_id

    def check(self) -> str | None:
        """Why this configuration must not start, or None."""
        if not is_loopback(self.host) and not self.token:
            return (
                f"refusing to bind {self.host}, beyond loopback, without a token: pass --token or set $NODEFLOW_TOKEN"
            )
        if self.workers < 1:
            return "--workers must be at least 1"
        if self.history_limit < 1:
            return "$NODEFLOW_HISTORY_LIMIT must be at least 1"
        return None


def make_private(data_dir: Path) -> None:
    """The data folder is the server's alone: 0700, and everything the process creates
    from now on 0600 (folders 0700), through the umask."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
