"""Downloads can't be turned against the machine: schemes on every hop, no private
addresses, a size cap, a deadline, cancellation, verified reuse, no echo of what came back."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from nodeflow.context import CancelToken
from nodeflow.errors import Cancelled
from nodes._shared import download
from nodes._shared.download import DownloadError, fetch

BODY = b"SECRET-BANNER " * 1000


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits.append(self.path)
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        route(self)


def _redirect(to):
    def handle(h):
        h.send_response(302)
        h.send_header("Location", to(h))
        h.end_headers()

    return handle


def _body(data, length=True):
    def handle(h):
        h.send_response(200)
        if length:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return handle


def _slow(h):
    """100 bytes every 0.1 s (40 s at most) of the million promised. The server's `streaming`
    is set once the first bytes are out, `dropped` when the client hangs up, `finished` if
    the route ever gets to its end."""
    h.send_response(200)
    h.send_header("Content-Length", str(10**6))
    h.end_headers()
    try:
        for _ in range(400):
            h.wfile.write(b"x" * 100)
            h.wfile.flush()
            h.server.streaming.set()
            time.sleep(0.1)
    except OSError:
        h.server.dropped.set()
    else:
        h.server.finished.set()


@pytest.fixture
def site():
    Handler.routes = {
        "/file": _body(BODY),
        "/nolength": _body(BODY * 20, length=False),
        "/to-ftp": _redirect(lambda h: "ftp://127.0.0.1/file"),
        "/to-file": _redirect(lambda h: "file:///etc/passwd"),
        "/to-self": _redirect(lambda h: "/file"),
        "/loop": _redirect(lambda h: "/loop"),
        "/slow": _slow,
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.hits = []
    server.streaming, server.dropped, server.finished = threading.Event(), threading.Event(), threading.Event()
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def mirror_allowed(monkeypatch):
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "1")


SHA = hashlib.sha256(BODY).hexdigest()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/file",
        "http://localhost:{port}/file",
        "http://[::1]:{port}/file",
        "http://10.0.0.1:{port}/file",
        "http://169.254.169.254/latest/meta-data",
        "http://224.0.0.1/x",
        "http://0.0.0.0:{port}/file",
        "http://[::ffff:127.0.0.1]:{port}/file",
    ],
)
def test_no_connection_to_local_or_private_addresses(site, tmp_path, url):
    base, hits = site.base, site.hits
    port = base.rsplit(":", 1)[1]
    with pytest.raises(DownloadError, match="downloads only reach public hosts"):
        fetch(url.format(port=port), tmp_path / "f", SHA, timeout=5)
    assert hits == []
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("path", ["/to-ftp", "/to-file"])
def test_every_redirect_hop_must_be_http(site, tmp_path, mirror_allowed, path):
    base, hits = site.base, site.hits
    with pytest.raises(DownloadError, match="only http"):
        fetch(base + path, tmp_path / "f", SHA, timeout=5)
    assert hits == [path]


def test_redirects_are_followed_and_bounded(site, tmp_path, mirror_allowed):
    base, hits = site.base, site.hits
    assert fetch(base + "/to-self", tmp_path / "f", SHA, timeout=5).read_bytes() == BODY
    assert hits == ["/to-self", "/file"]
    with pytest.raises(DownloadError, match="redirects"):
        fetch(base + "/loop", tmp_path / "g", None, timeout=5)
    assert hits[2:] == ["/loop"] * (download.MAX_REDIRECTS + 1)  # given up after the last hop allowed


def test_a_redirect_to_a_private_address_is_refused(site, tmp_path, monkeypatch):
    """The first hop is public (faked by its check); the second points at loopback."""
    base = site.base
    import nodes._shared.download as dl

    real = dl.resolve_public
    calls = []

    def first_hop_public(host, port):
        calls.append(host)
        if len(calls) == 1:
            monkeypatch.setenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "1")
            try:
                return real(host, port)
            finally:
                monkeypatch.delenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE")
        return real(host, port)

    Handler.routes["/to-local"] = _redirect(lambda h: "http://localhost:9/secret")
    monkeypatch.setattr(dl, "resolve_public", first_hop_public)
    with pytest.raises(DownloadError, match="public hosts"):
        fetch(base + "/to-local", tmp_path / "f", None, timeout=5)
    assert calls == ["127.0.0.1", "localhost"]


def test_size_cap_by_header_and_by_count(site, tmp_path, mirror_allowed, monkeypatch):
    base = site.base
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_MAX_MB", "0.01")  # about 10 kB
    with pytest.raises(DownloadError, match="over the download limit"):
        fetch(base + "/file", tmp_path / "f", None, timeout=5)
    with pytest.raises(DownloadError, match="passed the limit"):
        fetch(base + "/nolength", tmp_path / "g", None, timeout=5)
    assert not list(tmp_path.iterdir())


def test_overall_deadline(site, tmp_path, mirror_allowed):
    """Every read is within its timeout (5 s); the whole download passes its deadline (1 s):
    refused for taking too long, and the connection dropped mid-stream."""
    with pytest.raises(DownloadError, match="too long"):
        fetch(site.base + "/slow", tmp_path / "f", None, timeout=5, deadline_s=1.0)
    assert site.dropped.wait(30) and not site.finished.is_set()
    assert site.hits == ["/slow"]
    assert not list(tmp_path.iterdir())


def test_cancel_stops_a_slow_download(site, tmp_path, mirror_allowed):
    """Cancelled once the bytes are flowing: Cancelled, the connection dropped mid-stream,
    nothing kept."""
    token = CancelToken()

    def cancel_once_streaming():
        if site.streaming.wait(30):
            token.cancel()

    threading.Thread(target=cancel_once_streaming, daemon=True).start()
    with pytest.raises(Cancelled):
        fetch(site.base + "/slow", tmp_path / "f", None, timeout=5, cancel=token.check)
    assert token.cancelled and site.dropped.wait(30) and not site.finished.is_set()
    assert not list(tmp_path.iterdir())


def test_reuse_verifies_the_cached_file_again(site, tmp_path, mirror_allowed):
    base, hits = site.base, site.hits
    dest = tmp_path / "f"
    fetch(base + "/file", dest, SHA, timeout=5)
    fetch(base + "/file", dest, SHA, timeout=5)
    assert hits == ["/file"]
    dest.write_bytes(b"tampered")
    assert fetch(base + "/file", dest, SHA, timeout=5).read_bytes() == BODY
    assert hits == ["/file", "/file"]


def test_errors_never_echo_what_was_fetched(site, tmp_path, mirror_allowed):
    base = site.base
    with pytest.raises(DownloadError) as err:
        fetch(base + "/file", tmp_path / "f", "0" * 64, timeout=5)
    text = str(err.value)
    assert "checksum mismatch" in text and "SECRET" not in text and SHA not in text and SHA[:8] not in text
    with pytest.raises(DownloadError) as err:
        fetch(base + "/missing", tmp_path / "f", None, timeout=5)
    assert "HTTP 404" in str(err.value)
