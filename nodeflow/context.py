"""What a node sees of the engine: settings, its device, progress, previews,
cancellation and its output files. Node bodies stay plain functions of their inputs."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import events as ev
from .errors import Cancelled, shown
from .filenames import file_name_problem
from .node import InputError


def default_input_dir() -> Path:
    return Path(os.environ.get("NODEFLOW_INPUT_DIR") or "inputs")


def default_output_dir() -> Path:
    return Path(os.environ.get("NODEFLOW_OUTPUT_DIR") or "outputs")


def default_checkpoint_seconds() -> float:
    """$NODEFLOW_CHECKPOINT_SECONDS: how often a long node saves its checkpoint (default 30)."""
    raw = os.environ.get("NODEFLOW_CHECKPOINT_SECONDS")
    try:
        seconds = float(raw) if raw else 30.0
    except ValueError:
        raise ValueError(f"$NODEFLOW_CHECKPOINT_SECONDS must be a number of seconds, got {raw!r}") from None
    if seconds < 0:
        raise ValueError(f"$NODEFLOW_CHECKPOINT_SECONDS must be 0 or more, got {raw!r}")
    return seconds


@dataclass
class Checkpoints:
    """Where a job's long nodes keep their checkpoints: one file per node, named by the node's
    cache key, so that a checkpoint never serves another job, graph or version of a node. The
    job layer makes one per job (in the job's folder on the server) and removes it when the
    job ends; the CLI has none. `saved` is told of every checkpoint written (a Ray worker
    sends it to the server, so that whichever machine runs the job next resumes from it)."""

    root: Path
    interval: float = field(default_factory=default_checkpoint_seconds)
    saved: Callable[[str, bytes], None] | None = None

    def path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"not a node key: {key!r}")
        return self.root / f"{key}.ckpt"

    def load(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def save(self, key: str, data: bytes) -> None:
        from .cache import atomic_write

        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        if self.saved is not None:
            self.saved(path.name, data)

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


@dataclass
class Settings:
    input_dir: Path = field(default_factory=default_input_dir)
    output_dir: Path = field(default_factory=default_output_dir)
    # The HTTP server confines every path a graph names to these two directories. Output
    # names are confined everywhere: a graph from elsewhere (a PNG) must not write outside.
    confine_paths: bool = False
    # A sweep variation's values: a suffix for every output file name (before the
    # extension) and text that every saved PNG carries.
    output_suffix: str = ""
    output_metadata: dict[str, str] = field(default_factory=dict)
    # Where preview images go (ComfyUI's temp folder): files nobody keeps. None: the system's
    # temporary directory's nodeflow-temp/.
    temp_dir: Path | None = None
    # Where long nodes checkpoint their work (the server's jobs); None: no checkpoints.
    checkpoints: Checkpoints | None = None

    def input_path(self, name: str, input: str = "path") -> Path:
        return _resolve(self.input_dir, name, self.confine_paths, input)

    def local_path(self, name: str, input: str) -> Path:
        """A file or folder a node loads that is not an input image (weights, a model): in
        the CLI as given (relative to the working directory, ~ expanded); in the server
        confined to the input dir, like every other path a graph names."""
        if self.confine_paths:
            return self.input_path(name, input)
        return Path(os.path.expanduser(name))

    def output_path(self, name: str, input: str = "filename") -> Path:
        p = Path(name)
        if self.output_suffix and p.name not in ("", ".", ".."):
            name = str(p.with_name(p.stem + self.output_suffix + p.suffix))
        return _resolve(self.output_dir, name, True, input)

    def temp_path(self, name: str, input: str = "filename_prefix") -> Path:
        """A preview file's path in the temp folder (confined like every output name)."""
        base = self.temp_dir if self.temp_dir is not None else Path(tempfile.gettempdir()) / "nodeflow-temp"
        return _resolve(base, name, True, input)

    def shown_path(self, path: Path | str) -> str:
        """A path for a message: in the server, relative to its folder (clients never
        see the server's own paths); in the CLI, as it is."""
        if not self.confine_paths:
            return str(path)
        path = Path(path)
        for base in (self.input_dir, self.output_dir):
            for root in (base, base.resolve()):
                if path == root or root in path.parents:
                    return str(Path(base.name) / path.relative_to(root))
        return path.name


def _resolve(base: Path, name: str, confine: bool, input: str) -> Path:
    if not name:
        raise InputError(input, "the path is empty")
    problem = file_name_problem(name)
    if problem:
        raise InputError(input, f"{shown(name)} can't name a file: {problem}")
    path = Path(os.path.expanduser(name)) if not confine else Path(name)
    if not confine:
        return path if path.is_absolute() else base / path
    if path.is_absolute() or ".." in path.parts or name.startswith("~"):
        raise InputError(input, f"{shown(name)} must be a plain name inside {base.name}/ (no absolute paths, no '..')")
    root = base.resolve()
    full = (root / path).resolve()  # follows symlinks, so a link that escapes is caught
    if full != root and root not in full.parents:
        raise InputError(input, f"{shown(name)} leads outside {base.name}/ (symlink?)")
    return full


class CancelToken:
    """Set from any thread; checked between nodes and by long nodes."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Block until cancelled (True) or timeout seconds have passed (False)."""
        return self._event.wait(timeout)

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


@dataclass
class NodeContext:
    node_id: str
    node_type: str
    device: str
    key: str
    settings: Settings
    graph_json: str
    emit: Callable[[ev.Event], None]
    cancel: CancelToken
    outputs_written: list[str] = field(default_factory=list)
    up_to_date: bool = False

    def progress(self, value: float, total: float) -> None:
        self.emit(ev.NodeProgress(node=self.node_id, value=value, total=total))

    def preview(self, image: Any) -> None:
        self.emit(ev.NodePreview(node=self.node_id, image=image))

    def deliver(self, image: Any) -> None:
        """Send an image at full size to the client that queued the job, unthrottled
        (ComfyUI's SaveImageWebsocket); a run without such a client drops it."""
        self.emit(ev.NodePreview(node=self.node_id, image=image, full=True))

    def log(self, message: str) -> None:
        self.emit(ev.Log(node=self.node_id, message=message))

    def check_cancelled(self) -> None:
        self.cancel.check()

    def wrote(self, path: Path | str) -> None:
        self.outputs_written.append(str(path))

    @property
    def checkpoint_interval(self) -> float | None:
        """Seconds between a long node's checkpoints; None where there are none (the CLI)."""
        c = self.settings.checkpoints
        return None if c is None else c.interval

    def load_checkpoint(self) -> bytes | None:
        """This node's last checkpoint in this job (keyed by its cache key), or None."""
        c = self.settings.checkpoints
        return None if c is None else c.load(self.key)

    def save_checkpoint(self, data: bytes) -> None:
        """Replace this node's checkpoint, atomically; nothing where there are no checkpoints."""
        if self.settings.checkpoints is not None:
            self.settings.checkpoints.save(self.key, data)

    def mark_up_to_date(self, path: Path | str) -> None:
        """An output node found its result already on disk: report it as cached."""
        self.up_to_date = True
        self.outputs_written.append(str(path))
