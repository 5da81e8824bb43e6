"""Where things are: the checkout, the test images, the bundled graphs, the test plugins."""

from __future__ import annotations

import os
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
TESTS = SUPPORT.parent
ROOT = TESTS.parent
# The test images sit beside the checkout; $NODEFLOW_TEST_ASSETS points elsewhere (e.g. from a copy).
ASSETS = Path(os.environ.get("NODEFLOW_TEST_ASSETS") or ROOT.parent / "shared" / "assets")
# The bundled graphs: package data in nodeflow/graphs (the checkout's root `graphs` links there).
GRAPHS = ROOT / "nodeflow" / "graphs"
# Node modules for test servers, loaded through $NODEFLOW_PLUGINS (a folder for sys.path, not a package).
PLUGINS = SUPPORT / "plugins"
