"""torch glue shared by torch nodes: the device probe and a device-move hook.
torch itself is imported only when a probe or move actually runs."""

from __future__ import annotations

import os
from typing import Any

from nodeflow.devices import register_framework

from . import allocator

# Before torch loads: idle OpenMP threads sleep instead of spinning. On shared cores the
# spinning threads starve each other (bench/nst.py measured a 128 px step about 4x slower).
# A default only: set OMP_WAIT_POLICY yourself to choose otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Large freed tensors reused, not mapped and faulted in afresh (allocator.py says why).
allocator.apply_default()

TORCH_DEVICES = ("cuda", "mps", "cpu")


def _probe() -> set[str]:
    try:
        import torch
    except ImportError:  # reported at validation: the node's extra is not installed
        return {"cpu"}

    found = {"cpu"}
    if torch.cuda.is_available():
        found |= {"cuda"} | {f"cuda:{i}" for i in range(torch.cuda.device_count())}
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.add("mps")
    return found


register_framework("torch", _probe, module="torch")


def move(value: Any, device: str) -> Any:
    """Port-type hook: move a tensor, a module, or a dict/list of them."""
    if hasattr(value, "to"):
        return value.to(device)
    if isinstance(value, dict):
        return {k: move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(move(v, device) for v in value)
    return value
