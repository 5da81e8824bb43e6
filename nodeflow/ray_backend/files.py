"""Files between the server and its Ray workers: the inputs a job reads go with it,
the outputs it writes come back into the job's folder on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodeflow.cache import atomic_write
from nodeflow.plan import Plan

# A file bigger than this stays on the server: put it on the workers (a model, say).
MAX_SHIPPED_BYTES = 1 << 30


def inside(root: Path, name: str) -> Path | None:
    """root/name if it stays inside root (no absolute path, no '..', no escaping symlink)."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    base = root.resolve()
    path = (base / name).resolve()
    return path if base in path.parents else None


def job_inputs(plan: Plan, input_dir: Path) -> dict[str, bytes]:
    """Every file of the input dir that a literal of the plan names (LoadImage's path,
    a checkpoint file...), by name. Folders are not shipped."""
    files: dict[str, bytes] = {}
    for p in plan.nodes.values():
        for value in p.literals.values():
            if not isinstance(value, str) or value in files:
                continue
            path = inside(input_dir, value)
            if path is not None and path.is_file() and path.stat().st_size <= MAX_SHIPPED_BYTES:
                files[value] = path.read_bytes()
    return files


def place_files(root: Path, files: dict[str, bytes]) -> None:
    """Write files under root, each atomically; a name that escapes root is refused."""
    for name, data in files.items():
        path = inside(root, name)
        if path is None:
            raise ValueError(f"refusing to write {name!r} outside {root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (path.is_file() and path.read_bytes() == data):
            atomic_write(path, data)


def job_outputs(summary: dict[str, Any], out_dir: Path) -> dict[str, bytes]:
    """The files a job's summary lists, read from its output folder."""
    files = {}
    for o in summary.get("outputs") or []:
        path = inside(out_dir, o["name"])
        if path is not None and path.is_file():
            files[o["name"]] = path.read_bytes()
    return files
