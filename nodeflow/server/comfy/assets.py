"""The editor's static files, served fast: text files (scripts, styles, JSON, SVG, fonts that
aren't compressed already) gzip-compressed for browsers that accept it, each compressed once
into the data dir (written atomically, kept per frontend version); files whose names carry a
content hash (under assets/) cached by the browser for a year, everything else (index.html
first) revalidated on each load with its ETag (304 when unchanged).
With caching off (ServerConfig.editor_caching; $NODEFLOW_EDITOR_CACHING=0) the files are
served as the plain static mount serves them: the baseline bench/comfy.py measures against."""

from __future__ import annotations

import asyncio
import gzip
import re
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from ...cache import atomic_write

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Worth compressing: text, and binary formats that aren't compressed already.
COMPRESSIBLE = {
    ".js",
    ".mjs",
    ".css",
    ".html",
    ".json",
    ".svg",
    ".map",
    ".txt",
    ".xml",
    ".wasm",
    ".ttf",
    ".otf",
    ".ico",
}
MIN_COMPRESS = 1024  # smaller files gain nothing worth a header
# Vite's output names: name-<8+ url-safe base64 hash chars>.ext, under assets/.
HASHED = re.compile(r"^assets/(?:.+/)?[^/]+-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$")


def is_hashed(path: str) -> bool:
    """May the browser keep this file for good? (its name changes whenever its content does)"""
    return bool(HASHED.match(path))


def accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*") and params.replace(" ", "").lower() not in ("q=0", "q=0.0"):
            return True
    return False


class EditorFiles:
    """Answers GET/HEAD for a file of the frontend's static folder `root`; compressed copies
    go to `gzip_dir` (None: no compression, no cache headers: the plain static mount)."""

    def __init__(self, root: Path, gzip_dir: Path | None):
        self.root = root
        self.gzip_dir = gzip_dir
        self.root_real = root.resolve()
        self.static = StaticFiles(directory=root)

    async def gzipped(self, path: str, source: Path) -> Path | None:
        """The compressed copy of `source` (made once), or None when not worth it."""
        assert self.gzip_dir is not None
        if source.suffix.lower() not in COMPRESSIBLE:
            return None
        stat = source.stat()
        if stat.st_size < MIN_COMPRESS:
            return None
        target = self.gzip_dir / f"{path}.gz"
        try:
            if target.stat().st_mtime_ns >= stat.st_mtime_ns:
                return target
        except OSError:
            pass

        def compress() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, gzip.compress(source.read_bytes(), compresslevel=9, mtime=0))

        await asyncio.to_thread(compress)
        return target

    async def response(self, path: str, request: Request) -> Response:
        """The file at `path` (relative to root; "" or a folder: its index.html)."""
        scope = dict(request.scope)
        scope["path"] = "/" + path
        if self.gzip_dir is None:
            return await self.static.get_response(self.static.get_path(scope), scope)
        full, _ = await asyncio.to_thread(self.static.lookup_path, self.static.get_path(scope))
        plain = await self.static.get_response(self.static.get_path(scope), scope)
        if plain.status_code not in (200, 304) or not full:
            return plain
        source = Path(full)
        if source.is_dir():
            source = source / "index.html"
        # The file's own path under root (whatever the request spelled), for its copy and its rules.
        path = source.resolve().relative_to(self.root_real).as_posix()
        headers = {"Cache-Control": IMMUTABLE if is_hashed(path) else REVALIDATE}
        packed = None
        if source.suffix.lower() in COMPRESSIBLE:
            headers["Vary"] = "Accept-Encoding"
            if accepts_gzip(request) and "range" not in request.headers:
                packed = await self.gzipped(path, source)
        if packed is None:
            plain.headers.update(headers)
            return plain
        out = FileResponse(
            packed,
            media_type=plain.headers.get("content-type"),
            headers={**headers, "Content-Encoding": "gzip"},
            stat_result=packed.stat(),  # its ETag and length now, to answer If-None-Match
        )
        del out.headers["accept-ranges"]  # ranges are served from the uncompressed file
        etag = out.headers.get("etag", "")
        tags = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
        if etag and (etag in tags or f"W/{etag}" in tags or "*" in tags):
            keep = {k: v for k, v in out.headers.items() if k.lower() in ("etag", "cache-control", "vary")}
            return Response(status_code=304, headers=keep)
        return out
