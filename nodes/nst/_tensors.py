"""Image tensors for the optimizers: IMAGE in, 1 x 3 x H x W float32 out, and resizing.
torch is imported inside functions only."""

from __future__ import annotations

from typing import Any


def image_tensor(image: Any, device: str):
    """IMAGE (H x W x C numpy, 0..1) -> 1 x 3 x H x W float32 tensor, always a copy (the
    optimizers write into it), made once on the host and then moved."""
    import numpy as np
    import torch

    from nodes._shared.pixels import to_rgb

    chw = np.array(to_rgb(image).transpose(2, 0, 1), dtype=np.float32, order="C")
    return torch.from_numpy(chw)[None].to(device)


def resize_tensor(x, size: tuple[int, int]):
    import torch

    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(
        0, 1
    )
