"""Files as ComfyUI names them: `type` input|output|temp picks the folder (the server's inputs/,
outputs/ and temp/, where each job writes into its own subfolder), `subfolder` and `filename`
name the file, and a name may be annotated ("x.png [output]"). Everything resolves inside
its folder or is refused."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.exceptions import HTTPException

from nodeflow.jobs.config import ServerConfig

ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()-]+")


class FileRefused(HTTPException):
    """An HTTPException: the app answers it as {"error", "message"} with its status."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)


def folder(config: ServerConfig, kind: str) -> Path:
    if kind == "input":
        return config.input_dir
    if kind == "output":
        return config.output_root
    if kind == "temp":
        return config.temp_root
    raise FileRefused(400, f"unknown folder type {kind!r} (input, output or temp)")


def split_annotation(name: str, default_kind: str) -> tuple[str, str]:
    """("x.png [output]", _) -> ("x.png", "output")."""
    m = ANNOTATION.match(name)
    return (m.group(1), m.group(2)) if m else (name, default_kind)


def confined(base: Path, *parts: str) -> Path:
    """base/parts, refusing absolute paths, '..' and symlinks that lead outside base."""
    rel = Path(*[p for p in parts if p])
    if rel.is_absolute() or ".." in rel.parts or any(p.startswith("/") or "\\" in p for p in parts if p):
        raise FileRefused(400, "names must stay inside their folder (no absolute paths, no '..')")
    root = base.resolve()
    full = (root / rel).resolve()
    if full != root and root not in full.parents:
        raise FileRefused(403, "that name leads outside its folder")
    return full


def resolve(config: ServerConfig, filename: str, subfolder: str = "", kind: str = "output") -> Path:
    name, kind = split_annotation(filename, kind or "output")
    if not name:
        raise FileRefused(400, "filename is empty")
    path = confined(folder(config, kind), subfolder, name)
    if not path.is_file():
        raise FileRefused(404, f"no file {name!r} in {kind}/{subfolder}")
    return path


def safe_filename(name: str | None) -> str:
    base = Path(name or "").name
    base = SAFE_NAME.sub("_", base).strip(" .")
    return base or "upload.png"


def free_name(folder_path: Path, name: str, data: bytes) -> tuple[Path, bool]:
    """(path, exists): the name itself, the same bytes already stored under it or under a
    numbered name, or the next free 'stem (n).ext' (nothing is overwritten)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(10000):
        cand = folder_path / (name if n == 0 else f"{stem} ({n}){suffix}")
        if not cand.exists():
            return cand, False
        if cand.is_file() and cand.stat().st_size == len(data) and cand.read_bytes() == data:
            return cand, True
    raise FileRefused(409, f"too many files named like {name!r}")
