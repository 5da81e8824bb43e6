"""Node discovery: the `nodes` package of this project, plus any installed
distribution that declares the entry-point group `nodeflow.nodes`
(e.g. `[project.entry-points."nodeflow.nodes"] mine = "my_pkg.nodes"`).

Importing a module is enough: every Node subclass registers itself. This module imports
nothing of nodeflow's, so node.py can import it without a cycle.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from importlib.metadata import entry_points
from typing import Any

# A Node subclass. node.py imports this module, so it can't be named here without a cycle.
NodeClass = Any

ENTRY_POINT_GROUP = "nodeflow.nodes"
BUILTIN_PACKAGE = "nodes"

_REGISTRY: dict[str, NodeClass] = {}  # type name -> Node subclass
_loaded = False
load_errors: list[str] = []


def register(cls: NodeClass) -> None:
    old = _REGISTRY.get(cls.type)
    if old is not None and old.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"node type {cls.type!r} is defined twice: "
            f"{old.__module__}.{old.__qualname__} and {cls.__module__}.{cls.__qualname__}"
        )
    _REGISTRY[cls.type] = cls


def _import_package(name: str) -> None:
    """Import every public module of a package and of its public subpackages (one per
    node family). Private modules and packages (`_x`) are helpers: the node files that
    need them import them."""
    pkg = importlib.import_module(name)
    for info in pkgutil.iter_modules(pkg.__path__, prefix=name + "."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        if info.ispkg:
            _import_package(info.name)
        else:
            importlib.import_module(info.name)


def load_nodes() -> dict[str, NodeClass]:
    """Import every node module once; return {type name: class}."""
    global _loaded
    if not _loaded:
        _loaded = True
        _import_package(BUILTIN_PACKAGE)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                mod = ep.load()
                if hasattr(mod, "__path__"):
                    _import_package(mod.__name__)
            except Exception as exc:  # a broken plugin must not break the tool
                load_errors.append(f"plugin {ep.name!r} ({ep.value}): {exc}")
                print(f"nodeflow: warning: could not load plugin {ep.name!r}: {exc}", file=sys.stderr)
    return dict(_REGISTRY)


def get_node(type_name: str) -> NodeClass | None:
    return load_nodes().get(type_name)
