"""Previews (GET /view?...&preview=webp;90): a re-encoded copy of an image, no larger than
PREVIEW_SIDE pixels on its longest side (the editor's thumbnails).

Each decode runs under the upload decode limit (uploads.DECODES: a few at once, the rest
wait), decodes at reduced size where the format allows (JPEG's DCT scaling through Pillow's
draft mode; Image.reduce for the others), and its result is cached on disk per file, size,
modification time, format and quality, written atomically: the same preview asked 32 times
is decoded once or a few times, never 32 times at once."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from ..cache import atomic_write
from ..errors import shown
from .comfy.files import FileRefused
from .uploads import DECODES

PREVIEW_SIDE = 1024
FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG", "png": "PNG"}
QUALITY = re.compile(r"[0-9]{1,3}")


def parse_spec(spec: str) -> tuple[str, int]:
    """("webp", 90) from "webp;90"; an unknown format falls back to webp, as ComfyUI's does.
    A quality that is not a whole number from 1 to 100 is a 400."""
    fmt, _, quality = spec.partition(";")
    fmt = fmt.strip().lower()
    fmt = "jpeg" if fmt == "jpg" else fmt if fmt in FORMATS else "webp"
    if not quality:
        return fmt, 90
    if not QUALITY.fullmatch(quality) or not 1 <= int(quality) <= 100:
        shown = quality[:20] + ("..." if len(quality) > 20 else "")
        raise FileRefused(400, f"preview quality must be a whole number from 1 to 100, not {shown!r}")
    return fmt, int(quality)


RENDERED = [0]  # previews decoded since the start (the rest came from the cache)


def _render(path: Path, fmt: str, quality: int) -> bytes:
    from PIL import Image

    RENDERED[0] += 1  # counted in a decode slot (tests read it once all are done)
    with Image.open(path) as im:
        im.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        # thumbnail() reduces while decoding where it can (reducing_gap), then resamples.
        im.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), reducing_gap=2.0)
        out = im if fmt in ("webp", "png") and im.mode in ("RGB", "RGBA", "L", "LA") else im.convert("RGB")
        if fmt == "jpeg" and out.mode != "RGB":
            out = out.convert("RGB")
        buf = io.BytesIO()
        out.save(buf, FORMATS[fmt], quality=quality)
    return buf.getvalue()


def preview(path: Path, spec: str, cache_dir: Path) -> tuple[bytes, str]:
    """(bytes, media type) of the preview of `path`."""
    fmt, quality = parse_spec(spec)
    st = path.stat()
    key = hashlib.sha256(
        f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{fmt}\0{quality}\0{PREVIEW_SIDE}".encode("utf-8", "surrogateescape")
    ).hexdigest()
    cached = cache_dir / key[:2] / f"{key}.{fmt}"
    media = f"image/{fmt}"
    try:
        return cached.read_bytes(), media
    except OSError:
        pass
    try:
        data = DECODES.run(_cached_or_render, cached, path, fmt, quality)
    except Exception as exc:  # not a readable image: Pillow raises many kinds
        raise FileRefused(
            415, f"{shown(path.name, 80)} is not an image that can be previewed ({type(exc).__name__})"
        ) from None
    return data, media


def _cached_or_render(cached: Path, path: Path, fmt: str, quality: int) -> bytes:
    """In a decode slot: the cached preview if another request made it while this one
    waited its turn, else a new one, cached."""
    try:
        return cached.read_bytes()
    except OSError:
        pass
    data = _render(path, fmt, quality)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, data)
    except OSError:
        pass  # a full disk loses the cache entry, not the answer
    return data
