"""Input image uploads: size-limited, decoded once to prove they are images (with
a pixel limit checked before decoding, against decompression bombs), and stored
under a name the server chooses: the client's stem, sanitised, plus a content hash."""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .. import memtrim
from ..cache import atomic_write

T = TypeVar("T")

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}
# Full decodes run on a few threads of their own: each may take width x height x 4 bytes
# (200 MB at 50 megapixels), so concurrent uploads wait their turn instead of adding up. Their
# own threads, not the request threads: the C allocator keeps freed memory per thread, so
# decoding on every request thread would keep 200 MB in each ($NODEFLOW_UPLOAD_DECODES, default 2).
# Previews (GET /view?preview=) decode on the same threads, under the same limit.
_decodes = os.environ.get("NODEFLOW_UPLOAD_DECODES", "")
DECODE_LIMIT = int(_decodes) if _decodes.isascii() and _decodes.isdigit() and 0 < int(_decodes) <= 64 else 2
DECODER = ThreadPoolExecutor(DECODE_LIMIT, thread_name_prefix="nodeflow-decode")


class DecodeSlots:
    """The decodes running now and the most that ever ran at once (for tests and /health)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.semaphore = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.total = 0

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on a decode thread, at most `limit` at once; the caller waits its turn.
        Freed memory is trimmed after each decode (a 50 megapixel image takes 200 MB)."""
        return DECODER.submit(self._slot, fn, *args).result()

    def _slot(self, fn: Callable[..., T], *args: Any) -> T:
        with self.semaphore:
            with self._lock:
                self.active += 1
                self.total += 1
                self.peak = max(self.peak, self.active)
            try:
                return fn(*args)
            finally:
                with self._lock:
                    self.active -= 1
                memtrim.trim()


DECODES = DecodeSlots(DECODE_LIMIT)


def _decode(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()  # verify() skips pixel data; a truncated file fails here


class UploadRejected(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class StoredUpload:
    name: str
    size: int
    width: int
    height: int
    format: str
    sha256: str


def _stem(filename: str | None) -> str:
    stem = Path(filename or "").stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:40]
    return stem or "upload"


def check_image(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height), or UploadRejected."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format, im.size
            if fmt not in FORMATS:
                raise UploadRejected(
                    415, "unsupported_image", f"{fmt} images are not accepted (use one of: {', '.join(FORMATS)})"
                )
            if w * h > max_pixels:  # from the header, before any pixel is decoded
                raise UploadRejected(
                    413,
                    "image_too_large",
                    f"the image is {w}x{h}, over the {max_pixels // 1_000_000} megapixel limit (decompression bomb?)",
                )
            im.verify()
        DECODES.run(_decode, data)
    except UploadRejected:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, for the most extreme sizes
        raise UploadRejected(413, "image_too_large", f"{exc} (over the megapixel limit)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # Pillow names the file object it was given (with its address): keep the reason only.
        reason = re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc)).strip() or type(exc).__name__
        raise UploadRejected(415, "not_an_image", f"the file is not a readable image ({reason})") from None
    return fmt, w, h


def store_upload(data: bytes, filename: str | None, input_dir: Path, max_pixels: int) -> StoredUpload:
    fmt, w, h = check_image(data, max_pixels)
    digest = hashlib.sha256(data).hexdigest()
    name = f"{_stem(filename)}-{digest[:16]}{FORMATS[fmt]}"
    input_dir.mkdir(parents=True, exist_ok=True)
    target = input_dir / name
    if not target.exists():  # same bytes, same name: uploading twice stores once
        atomic_write(target, data)
    return StoredUpload(name, len(data), w, h, fmt, digest)
