"""Files as ComfyUI names them: `type` input|output|temp picks the folder (the server's inputs/,
outputs/ and temp/, where each job writes into its own subfolder), `subfolder` and `filename`
name the file, and a name may be annotated ("x.png [output]"). Everything resolves inside
its folder or is refused."""

from __future__ import annotations

import errno
import re
from pathlib import Path

from starlette.exceptions import HTTPException

from nodeflow.cache import atomic_write
from nodeflow.errors import shown
from nodeflow.filenames import file_name_problem
from nodeflow.jobs.config import ServerConfig

ANNOTATION = re.compile(r"(.*) \[(input|output|temp)\]", re.DOTALL)
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
    raise FileRefused(400, f"unknown folder type {shown(kind, 40)} (input, output or temp)")


def split_annotation(name: str, default_kind: str) -> tuple[str, str]:
    """("x.png [output]", _) -> ("x.png", "output")."""
    m = ANNOTATION.fullmatch(name)
    return (m.group(1), m.group(2)) if m else (name, default_kind)


MAX_DEPTH = 32  # folder levels below input/ or output/
MAX_NAME = 200  # characters kept of an uploaded file's name


def confined(base: Path, *parts: str) -> Path:
    """base/parts, refusing absolute paths, '..' and symlinks that lead outside base, and
    names no file system takes (NUL bytes, over-long names, absurd depths) with a 400."""
    for part in parts:
        problem = part and file_name_problem(part)
        if problem:
            raise FileRefused(400, f"{shown(part, 60)} can't name a file: {problem}")
    rel = Path(*[p for p in parts if p])
    if len(rel.parts) > MAX_DEPTH:
        raise FileRefused(400, f"the name is {len(rel.parts)} folders deep: at most {MAX_DEPTH}")
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
        raise FileRefused(404, f"no file {shown(name, 80)} in {kind}/{shown(subfolder, 80)}")
    return path


def safe_filename(name: str | None) -> str:
    base = Path(name or "").name
    base = SAFE_NAME.sub("_", base).strip(" .")
    if len(base) > MAX_NAME:  # keep the extension, cut the stem
        suffix = Path(base).suffix[:20]
        base = base[: MAX_NAME - len(suffix)] + suffix
    return base or "upload.png"


def free_name(folder_path: Path, name: str, data: bytes) -> tuple[Path, bool]:
    """(path, exists): the name itself, the same bytes already stored under it or under a
    numbered name, or the next free 'stem (n).ext' (nothing is overwritten)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(10000):
        cand = folder_path / (name if n == 0 else f"{stem} ({n}){suffix}")
        if not cand.exists():
            return cand, False
        if cand.is_dir():
            continue
        if cand.is_file() and cand.stat().st_size == len(data) and cand.read_bytes() == data:
            return cand, True
    raise FileRefused(409, f"too many files named like {shown(name, 80)}")


def store_bytes(path: Path, data: bytes) -> None:
    """Write `path` atomically (its folders made), answering what the file system refuses as
    the client's error: 409 for a name taken by a folder or a file, 507 for a full disk."""
    if path.is_dir():
        raise FileRefused(409, f"{path.name[:60]!r} is an existing folder: it can't be overwritten with a file")
    if any(p.exists() and not p.is_dir() for p in path.parents):
        raise FileRefused(409, "a folder in the name is an existing file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise FileRefused(507, "the server's disk is full: free space, then try again") from None
        if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise FileRefused(409, "the name or one of its folders is taken by a file or folder") from None
        raise
