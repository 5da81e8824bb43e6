"""LoadImage's url + sha256 source, against a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest

from nodeflow.context import Settings
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan


@pytest.fixture
def http_assets(assets, monkeypatch):
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "1")  # the test server is on loopback
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(assets)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def load_graph(url: str, sha: str) -> dict:
    return {
        "nodes": {
            "load": {
                "type": "LoadImage",
                "inputs": {"path": "copy_of_astronaut.png", "max_size": 64, "url": url, "sha256": sha},
            }
        }
    }


def run(graph, tmp_path):
    settings = Settings(input_dir=tmp_path / "empty", output_dir=tmp_path / "out")
    return Executor().run(build_plan(parse_graph(graph), settings, only=["load"]))


def test_downloads_once_verifies_and_reuses(http_assets, tmp_path, assets, isolated_env):
    base, requests = http_assets
    sha = hashlib.sha256((assets / "astronaut.png").read_bytes()).hexdigest()
    first = run(load_graph(f"{base}/astronaut.png", sha), tmp_path)
    assert first.status == "succeeded", first.error
    assert first.values["load"]["image"].shape == (64, 64, 3)
    assert len(requests) == 1
    cached = list(isolated_env["NODEFLOW_DOWNLOAD_DIR"].iterdir())
    assert len(cached) == 1 and hashlib.sha256(cached[0].read_bytes()).hexdigest() == sha
    second = run(load_graph(f"{base}/astronaut.png", sha), tmp_path)
    assert second.status == "succeeded" and len(requests) == 1  # served from the download cache


def test_checksum_mismatch_keeps_nothing(http_assets, tmp_path, isolated_env):
    base, _ = http_assets
    result = run(load_graph(f"{base}/astronaut.png", "0" * 64), tmp_path)
    assert result.status == "failed" and result.error.input == "url"
    assert "checksum mismatch" in result.error.message
    assert not list(isolated_env["NODEFLOW_DOWNLOAD_DIR"].glob("*"))


def test_unreachable_url_says_where_to_put_the_file(tmp_path):
    result = run(load_graph("http://127.0.0.1:9/astronaut.png", "1" * 64), tmp_path)
    assert result.status == "failed" and result.error.input == "url"
    assert "could not download" in result.error.message and "astronaut.png" in result.error.message


def test_only_http_urls_are_fetched(tmp_path):
    result = run(load_graph("file:///etc/hostname", "2" * 64), tmp_path)
    assert result.status == "failed" and result.error.input == "url"
    assert "only http(s)" in result.error.message
