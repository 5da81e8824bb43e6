"""Host allowlist and Origin checks (in-process, and on the live server's WebSocket
handshakes), and the token kept out of the live server's log."""

from __future__ import annotations

import logging
from contextlib import closing

import pytest
from support.inprocess import another_client, app_client
from support.server_harness import small_graph, upload, wait_job

from nodeflow.server.auth import RedactToken
from nodeflow.server.origin import HostOriginGuard, allowed_host_names, split_host

TOKEN = "guard-token-0123456789"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The API in-process, with a token and one extra host name."""
    with app_client(tmp_path_factory.mktemp("guard") / "data", token=TOKEN, allowed_hosts=["nodeflow.internal"]) as c:
        yield c


@pytest.fixture(scope="module")
def server(token_server):
    """The shared live server with a token, logging every request: for the WebSocket
    handshakes and the log."""
    return token_server


def test_a_foreign_host_is_refused_on_every_route(app):
    port = app.config.port
    with closing(another_client(app, token=TOKEN)) as c:
        for method, path in [("GET", "/health"), ("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/docs")]:
            r = c.request(method, path, headers={"Host": "evil.example"})
            assert r.status_code == 400, (method, path)
            assert r.json()["error"] == "forbidden_host"
        for host in (
            "localhost",
            f"localhost:{port}",
            f"127.0.0.1:{port}",
            f"[::1]:{port}",
            "nodeflow.internal:8188",
            "LOCALHOST.",
        ):
            assert c.get("/jobs", headers={"Host": host}).status_code == 200, host


def test_a_foreign_origin_cannot_change_state(app):
    port = app.config.port
    own = f"http://127.0.0.1:{port}"
    with closing(another_client(app, token=TOKEN)) as c:
        graph = small_graph(upload(c), filename="origin.png", max_size=16)
        for origin in (
            "http://evil.example",
            "null",
            f"http://127.0.0.1:{port + 1}",
            "http://nodeflow.internal.evil.example",
        ):
            for path in ("/jobs", "/uploads", "/jobs/x/cancel", "/anything/added/later"):
                r = c.post(path, json={"graph": graph}, headers={"Origin": origin})
                assert r.status_code == 403, (origin, path)
                assert r.json()["error"] == "forbidden_origin"
            assert c.delete("/jobs", headers={"Origin": origin}).status_code == 403
            # Reading is not refused by Origin (the Host check covers rebinding).
            assert c.get("/jobs", headers={"Origin": origin}).status_code == 200
        r = c.post("/jobs", json={"graph": graph}, headers={"Origin": own})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert wait_job(c, job_id)["status"] == "succeeded"


def test_websocket_handshakes_check_the_origin(server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    auth = {"Authorization": f"Bearer {server.token}"}
    url = f"ws://127.0.0.1:{server.port}/ws"
    with pytest.raises(InvalidStatus) as refused:
        with connect(url, open_timeout=30, origin="http://evil.example", additional_headers=auth):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        with connect(url, open_timeout=30, additional_headers={**auth, "Host": "evil.example"}):
            pass
    with connect(url, open_timeout=30, origin=f"http://127.0.0.1:{server.port}", additional_headers=auth):
        pass


def test_the_token_never_reaches_the_log(server):
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{server.port}/ws?token={server.token}", open_timeout=30):
        pass
    with server.client(token=None) as anon:
        anon.get(f"/jobs?token={server.token}")
        anon.get(f"/jobs/{server.token}", headers={"Authorization": f"Bearer {server.token}"})
    with server.client() as c:
        c.get("/health")  # the log is written in order: this line comes after the others
    log = server.log.read_text()
    assert "WebSocket /ws?token=***" in log
    assert server.token not in log


def test_redaction_keeps_uvicorn_access_arguments():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/events?token=abc&job=1", "1.1", 200),
        None,
    )
    RedactToken("abc").filter(record)
    assert record.args[2] == "/events?token=***&job=1" and record.args[4] == 200


def test_host_names_and_defaults():
    assert split_host("[::1]:8188") == ("::1", "8188")
    assert split_host("Example.ORG:80") == ("example.org", "80")
    assert split_host("::1") == ("::1", None)
    names = allowed_host_names("0.0.0.0", ["a.example"])
    assert names == {"localhost", "127.0.0.1", "::1", "a.example"}
    assert "192.168.1.5" in allowed_host_names("192.168.1.5")
    guard = HostOriginGuard(None, ["*"])
    assert guard.host_allowed("anything.example")
    assert not HostOriginGuard(None, names).host_allowed(None)
