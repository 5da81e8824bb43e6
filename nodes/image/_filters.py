"""Small separable filters in numpy (no scipy needed)."""

from __future__ import annotations

import numpy as np


def correlate_separable(img: np.ndarray, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
    """Correlate each channel with the outer product ky x kx, reflecting at the borders."""
    rx, ry = len(kx) // 2, len(ky) // 2
    h, w = img.shape[:2]
    padded = np.pad(img, ((ry, ry), (rx, rx), (0, 0)), mode="reflect" if min(h, w) > max(rx, ry) else "edge")
    rows = sum(k * padded[:, i : i + w] for i, k in enumerate(kx) if k != 0)
    return sum(k * rows[i : i + h] for i, k in enumerate(ky) if k != 0).astype(np.float32)


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(3.0 * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    k = gaussian_kernel(sigma)
    return correlate_separable(img, k, k)


def grayscale(img: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, keeping a channel axis."""
    if img.shape[2] == 1:
        return img
    return (img[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, :, None]
