"""Helpers of the ComfyUI core nodes: resampling, ComfyUI's file-name counter, PNG writing."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from nodeflow.node import InputError

UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
CROP_METHODS = ("disabled", "center")
MAX_RESOLUTION = 16384  # ComfyUI's widget bound for sizes


def _filter(method: str) -> Any:
    from PIL import Image

    return {
        "nearest-exact": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "area": Image.Resampling.BOX,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
    }[method]


def center_crop(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centred part of img with the aspect ratio of width x height."""
    old_h, old_w = img.shape[:2]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return img[y : old_h - y, x : old_w - x]


def scale(img: np.ndarray, width: int, height: int, method: str, crop: str = "disabled") -> np.ndarray:
    """img resampled to width x height (float precision, channel by channel)."""
    from PIL import Image

    from nodes._shared.pixels import as_image

    if crop == "center":
        img = center_crop(img, width, height)
    if (img.shape[1], img.shape[0]) == (width, height):
        return as_image(img)
    chans = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(img[:, :, c]), mode="F").resize((width, height), _filter(method))
        )
        for c in range(img.shape[2])
    ]
    return as_image(np.clip(np.stack(chans, axis=2), 0.0, 1.0))


def expand_prefix(prefix: str, width: int, height: int) -> str:
    """ComfyUI's variables in a filename prefix: %width%, %height%, %year% ... %second%."""
    if "%" not in prefix:
        return prefix
    now = time.localtime()
    values = {
        "width": width,
        "height": height,
        "year": now.tm_year,
        "month": f"{now.tm_mon:02d}",
        "day": f"{now.tm_mday:02d}",
        "hour": f"{now.tm_hour:02d}",
        "minute": f"{now.tm_min:02d}",
        "second": f"{now.tm_sec:02d}",
    }
    for key, value in values.items():
        prefix = prefix.replace(f"%{key}%", str(value))
    return prefix


def next_counter(folder: Path, name: str) -> int:
    """ComfyUI's counter: one more than the highest N of the files `name_N_...` in folder (from 1)."""
    pattern = re.compile(re.escape(name) + r"_(\d+)_", re.IGNORECASE if os.name == "nt" else 0)
    highest = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            m = pattern.match(entry.name)
            if m:
                highest = max(highest, int(m.group(1)))
    return highest + 1


def numbered_path(locate: Any, prefix: str, img: np.ndarray) -> Path:
    """Where `prefix` (maybe with a subfolder) puts the next image: folder/name_00001_.png.
    `locate(relative name)` confines the name to its folder (raising InputError)."""
    prefix = expand_prefix(prefix, img.shape[1], img.shape[0])
    if not prefix.strip() or prefix.endswith(("/", "\\")):
        raise InputError("filename_prefix", f"{prefix!r} has no file name part")
    probe = locate(f"{prefix}_00001_.png")
    name = Path(prefix).name
    return probe.with_name(f"{name}_{next_counter(probe.parent, name):05d}_.png")


def png_bytes(img: np.ndarray, chunks: dict[str, str], compress_level: int) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    from nodes._shared.pixels import to_pil

    info = PngInfo()
    for key, text in chunks.items():
        info.add_text(key, text)
    buf = io.BytesIO()
    to_pil(img).save(buf, "PNG", pnginfo=info, compress_level=compress_level)
    return buf.getvalue()
