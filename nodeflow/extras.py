"""Whether an optional part of nodeflow is installed, asked without importing it."""

from __future__ import annotations

from importlib import metadata


def missing(extra: str, *distributions: str) -> str | None:
    """A message naming the pip `extra` when one of its `distributions` is not installed; else None.
    Asked by distribution, not by import: nothing loads, and a folder of that name is no answer."""
    absent = []
    for name in distributions:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
    if not absent:
        return None
    return f"{', '.join(absent)} is not installed: pip install 'nodeflow[{extra}]'"
