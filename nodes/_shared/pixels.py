"""The one image representation for every node, and cheap conversions.

IMAGE values are numpy float32 arrays, H x W x C (C = 1, 3 or 4), values in 0..1,
C-contiguous. torch and TF conversions are views where the framework allows it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_image(array: Any) -> np.ndarray:
    """Normalise an array to the IMAGE representation (copies only when needed)."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W x C image, got shape {a.shape}")
    return np.ascontiguousarray(a)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_pil(img: np.ndarray):
    from PIL import Image

    u8 = to_uint8(img)
    return Image.fromarray(u8[:, :, 0] if u8.shape[2] == 1 else u8)


def from_pil(im) -> np.ndarray:
    return as_image(np.asarray(im, dtype=np.float32) / 255.0)


def to_rgb(img: np.ndarray) -> np.ndarray:
    if img.shape[2] == 3:
        return img
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    if (img.shape[1], img.shape[0]) == (width, height):
        return img
    chans = [
        Image.fromarray(img[:, :, c], mode="F").resize((width, height), Image.Resampling.LANCZOS)
        for c in range(img.shape[2])
    ]
    return as_image(np.clip(np.stack([np.asarray(c) for c in chans], axis=2), 0.0, 1.0))


def fit_max_side(img: np.ndarray, max_size: int | None) -> np.ndarray:
    h, w = img.shape[:2]
    if not max_size or max(h, w) <= max_size:
        return img
    scale = max_size / max(h, w)
    return resize(img, max(1, round(w * scale)), max(1, round(h * scale)))


def to_torch(img: np.ndarray, device: str = "cpu"):
    """1 x C x H x W tensor; a view of the numpy buffer on the CPU."""
    import torch

    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).to(device)


def from_torch(tensor) -> np.ndarray:
    t = tensor.detach()
    if t.dim() == 4:
        t = t[0]
    return as_image(t.permute(1, 2, 0).float().cpu().numpy())
