"""Fixtures of the style-transfer tests."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1; yields (root dir, base url)."""
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "1")  # a mirror on loopback
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
