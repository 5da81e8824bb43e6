"""Shared fixtures: the test images, an isolated cache/output/input environment,
and a helper that runs the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The test images sit beside the checkout; $NODEFLOW_TEST_ASSETS points elsewhere (e.g. from a copy).
ASSETS = Path(os.environ.get("NODEFLOW_TEST_ASSETS") or ROOT.parent / "shared" / "assets")
GRAPHS = ROOT / "graphs"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets its own disk cache, download cache, input and output dirs."""
    env = {
        "NODEFLOW_CACHE_DIR": tmp_path / "cache",
        "NODEFLOW_DOWNLOAD_DIR": tmp_path / "downloads",
        "NODEFLOW_INPUT_DIR": ASSETS,
        "NODEFLOW_OUTPUT_DIR": tmp_path / "out",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    return {k: Path(v) for k, v in env.items()}


@pytest.fixture
def assets() -> Path:
    if not (ASSETS / "astronaut.png").exists():
        pytest.fail(f"test images missing: expected them in {ASSETS}")
    return ASSETS


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """Run `python -m nodeflow ARGS` and return the CompletedProcess (text mode)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "nodeflow", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli
