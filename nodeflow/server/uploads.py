"""Input image uploads: size-limited, decoded once to prove they are images (with
a pixel limit checked before decoding, against decompression bombs), and stored
under a name the server chooses: the client's stem, sanitised, plus a content hash."""

from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..cache import atomic_write

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}
# Full decodes run on a few threads of their own: each may take width x height x 4 bytes
# (200 MB at 50 megapixels), so concurrent uploads wait their turn instead of adding up. Their
# own threads, not the request threads: the C allocator keeps freed memory per thread, so
# decoding on every request thread would keep 200 MB in each ($NODEFLOW_UPLOAD_DECODES, default 2).
_decodes = os.environ.get("NODEFLOW_UPLOAD_DECODES", "")
DECODER = ThreadPoolExecutor(
    int(_decodes) if _decodes.isdigit() and int(_decodes) > 0 else 2, thread_name_prefix="nodeflow-decode"
)


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
        DECODER.submit(_decode, data).result()
    except UploadRejected:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, for the most extreme sizes
        raise UploadRejected(413, "image_too_large", f"{exc} (over the megapixel limit)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UploadRejected(415, "not_an_image", f"the file is not a readable image ({exc})") from None
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
