"""Image files before decoding: the pixel limit that refuses decompression bombs, and reading a
file's header (cheap) so that validation can tell an image from another file."""

from __future__ import annotations

from pathlib import Path

from nodeflow.node import InputError

# Refuse decompression bombs before decoding: 100 megapixels is far beyond any
# photo this tool is meant for, and caps decoded memory at about 1.2 GB (float32 RGB).
MAX_PIXELS = 100_000_000


def read_header(path: Path, shown: str, input: str = "path") -> tuple[str, int, int]:
    """(format, width, height) from the file's header, without decoding its pixels; an
    InputError on `input` for a file that is not an image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return str(im.format), im.size[0], im.size[1]
    except Image.DecompressionBombError:
        raise InputError(input, f"{shown} is too large an image (decompression bomb?)") from None
    except Exception as exc:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ValueError...
        reason = "not an image Pillow can read" if "identify" in str(exc) else type(exc).__name__
        raise InputError(input, f"{shown} is not a readable image ({reason})") from None
