"""Headless Chromium as the browser tests, bench/comfy.py and scripts/editor_screenshots.py launch
it: Debian's binary, with nothing that calls home."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
