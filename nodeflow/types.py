"""Port types: the names that typed node inputs and outputs carry.

A new type is one call to `port_type(...)`. The engine knows nothing about what a
value of a type is; the type's hooks (size, device move) say what it needs to know.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _default_nbytes(value: Any) -> int:
    return int(getattr(value, "nbytes", 0) or sys.getsizeof(value))


@dataclass(frozen=True)
class PortType:
    name: str
    description: str = ""
    # Python type of a literal given in the graph file; None means link-only.
    literal: type | None = None
    # May a value of this type be kept in the on-disk / in-memory value caches?
    persist: bool = True
    memory_cache: bool = True
    nbytes: Callable[[Any], int] = _default_nbytes
    # Moves a value to a device ("cpu", "cuda", "mps"); None means device-free.
    to_device: Callable[[Any, str], Any] | None = None
    # A value tied to one framework (a model, tensors): a node taking it runs on that framework.
    framework_bound: bool = False

    def __str__(self) -> str:
        return self.name


_TYPES: dict[str, PortType] = {}


def port_type(name: str, description: str = "", **hooks: Any) -> PortType:
    """Declare (or fetch, if identical) a port type by name."""
    new = PortType(name=name, description=description, **hooks)
    old = _TYPES.get(name)
    if old is not None:
        if old != new:
            raise ValueError(f"port type {name!r} is already declared differently")
        return old
    _TYPES[name] = new
    return new


def get_port_type(name: str) -> PortType:
    return _TYPES[name]


def all_port_types() -> dict[str, PortType]:
    return dict(_TYPES)


INT = port_type("INT", "an integer", literal=int)
FLOAT = port_type("FLOAT", "a real number", literal=float)
STRING = port_type("STRING", "text", literal=str)
BOOLEAN = port_type("BOOLEAN", "true or false", literal=bool)
# The one in-memory image representation for every node: a numpy float32 array,
# H x W x C (C = 1, 3 or 4), values in 0..1, C-contiguous.
IMAGE = port_type("IMAGE", "float32 array, H x W x C, values 0..1")
# A mask (ComfyUI's MASK): a numpy float32 array, H x W, values 0..1; 1 marks the masked
# (transparent) pixels.
MASK = port_type("MASK", "float32 array, H x W, values 0..1 (1: masked)")
