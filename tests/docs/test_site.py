"""The documentation site builds with `mkdocs build --strict`: no broken links or anchors, no
page missing from the nav (the node pages are reached from their index). Needs the docs extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_docs_site_builds_strictly(tmp_path):
    pytest.importorskip("material", reason="needs the docs extra (mkdocs-material)")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "site" / "nodes" / "AdamOptimize" / "index.html").exists()
