"""Device placement, decided before anything runs.

Frameworks register a probe that lists the devices they can see (the node library
registers torch's; the engine imports no framework). Nodes declare the devices they
support. Precedence: the node's own `device` > `--device` > the graph default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

PREFERENCE = ("cuda", "mps", "cpu")
_PROBES: dict[str, Callable[[], set[str]]] = {}
_MODULES: dict[str, str] = {}
_probe_cache: dict[str, set[str]] = {}


def register_framework(name: str, probe: Callable[[], set[str]], module: str | None = None) -> None:
    """probe() returns the devices the framework can use, e.g. {"cpu", "cuda", "cuda:0"}.
    `module`: the top-level module the framework is (e.g. "torch"); where it is given, a node
    on this framework is a validation error, naming the node's extra, when it is not installed."""
    _PROBES[name] = probe
    if module:
        _MODULES[name] = module


def installed(framework: str) -> bool:
    """Whether the framework's module can be imported here (found, never imported)."""
    import importlib.util

    module = _MODULES.get(framework)
    if module is None:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def probe(framework: str) -> set[str]:
    if framework not in _probe_cache:
        fn = _PROBES.get(framework)
        _probe_cache[framework] = fn() if fn else {"cpu"}
    return _probe_cache[framework]


DEVICE_NAME = re.compile(r"(auto|cpu|mps|cuda(:[0-9]{1,4})?)")


def name_problem(device: object) -> str | None:
    """Why `device` is not a device name (checked before any probing), or None."""
    if isinstance(device, str) and DEVICE_NAME.fullmatch(device):
        return None
    from .errors import shown

    return f"{shown(device)} is not a device: use auto, cpu, cuda, cuda:N (N a GPU index) or mps"


def base(device: str) -> str:
    return device.split(":", 1)[0]


class DeviceError(ValueError):
    pass


@dataclass(frozen=True)
class Placement:
    device: str
    note: str = ""  # why it differs from what was asked, for the run log


def resolve(requested: str, supported: Iterable[str], available: set[str], pinned: bool) -> Placement:
    """Pick a device for one node.

    requested: "auto", "cpu", "cuda", "cuda:1" or "mps"; supported: what the node can
    use; available: what its frameworks see; pinned: the node itself asked for it.
    """
    supported = tuple(supported)
    usable = [d for d in PREFERENCE if d in supported and d in {base(a) for a in available}]
    if not usable:
        raise DeviceError(f"none of the node's devices ({', '.join(supported)}) is available")
    if requested == "auto":
        return Placement(usable[0])
    kind = base(requested)
    if kind not in PREFERENCE:
        raise DeviceError(f"unknown device {requested!r} (use auto, cpu, cuda, cuda:N or mps)")
    if kind not in supported:
        if pinned:
            raise DeviceError(f"this node runs on {', '.join(supported)}, not {requested}")
        return Placement(usable[0], f"{requested} asked, node supports only {', '.join(supported)}")
    if requested not in available and kind not in available:
        raise DeviceError(f"device {requested!r} is not available here (found: {', '.join(sorted(available))})")
    if ":" in requested and requested not in available:
        raise DeviceError(f"device {requested!r} is not available here (found: {', '.join(sorted(available))})")
    return Placement(requested)
