"""Bearer-token auth: required when configured, on every route but health and the
API description (in-process), on the WebSocket and traded for a login cookie (the shared
live server with a token); and required to bind beyond loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing

import httpx
import pytest
from support.inprocess import another_client, app_client
from support.server_harness import events, small_graph, submit, upload, wait_job

from nodeflow.jobs.config import ServerConfig, is_loopback

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The API in-process, with a token."""
    with app_client(tmp_path_factory.mktemp("auth") / "data", token=TOKEN) as c:
        yield c


@pytest.fixture(scope="module")
def server(token_server):
    """The shared live server with a token, for the WebSocket and the login cookie."""
    return token_server


def test_the_token_is_required_when_configured(app):
    ok = app  # sends the token
    with closing(another_client(app)) as anon, closing(another_client(app, token="wrong")) as wrong:
        for method, path in [
            ("GET", "/jobs"),
            ("POST", "/jobs"),
            ("GET", "/nodes"),
            ("GET", "/graphs"),
            ("POST", "/uploads"),
            ("GET", "/events"),
            ("GET", "/jobs/x/outputs/a.png"),
        ]:
            r = anon.request(method, path)
            assert r.status_code == 401, (method, path)
            assert r.headers["www-authenticate"] == "Bearer"
            assert wrong.request(method, path).status_code == 401
        assert "wrong" in wrong.get("/jobs").json()["message"]

        # Open: liveness and the API description.
        assert anon.get("/health").json()["auth"] is True
        assert anon.get("/openapi.json").status_code == 200

        name = upload(ok)
        job_id = submit(ok, small_graph(name))
        assert wait_job(ok, job_id)["status"] == "succeeded"
        assert anon.get(f"/jobs/{job_id}").status_code == 401
        # EventSource can't send headers: the stream takes ?token= as well.
        assert anon.get(f"/jobs/{job_id}/events").status_code == 401
        seen = list(events(anon, f"/jobs/{job_id}/events?token={TOKEN}"))
        assert seen[-1]["event"] == "job_finished"
        # ... but the other routes don't.
        assert anon.get(f"/jobs/{job_id}?token={TOKEN}").status_code == 401


def test_websocket_needs_the_token(server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus):
        with connect(f"ws://127.0.0.1:{server.port}/jobs/ws", open_timeout=30):
            pass
    with connect(
        f"ws://127.0.0.1:{server.port}/jobs/ws",
        open_timeout=30,
        additional_headers={"Authorization": f"Bearer {server.token}"},
    ) as ws:
        with server.client() as ok:
            job_id = submit(ok, small_graph(upload(ok), filename="w.png", max_size=16))
        while True:
            e = json.loads(ws.recv(timeout=60))
            if e["event"] == "job_finished" and e["job_id"] == job_id:
                break


def test_the_login_page_trades_the_token_for_a_strict_http_only_cookie(server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    html = {"Accept": "text/html"}
    with server.client(token=None) as anon:
        r = anon.get("/", headers=html, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"  # a browser is sent to log in
        assert anon.get("/api/object_info").status_code == 401  # the API still says 401
        assert 'type="password"' in anon.get("/login").text
        wrong = anon.post("/login", data={"token": "guess"}, follow_redirects=False)
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        r = anon.post("/login", data={"token": server.token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and server.token not in cookie
        session = cookie.split(";")[0]
    with server.client(token=None) as browser:
        browser.headers["cookie"] = session
        assert browser.get("/api/object_info").status_code == 200
        assert browser.get("/jobs").status_code == 200
        assert browser.get("/", headers=html, follow_redirects=False).status_code != 303
    with connect(
        f"ws://127.0.0.1:{server.port}/ws?clientId=c", open_timeout=30, additional_headers={"Cookie": session}
    ) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "status"
    with pytest.raises(InvalidStatus):
        with connect(
            f"ws://127.0.0.1:{server.port}/ws?clientId=c",
            open_timeout=30,
            additional_headers={"Cookie": session[:-4] + "0000"},
        ):
            pass


def test_binding_beyond_loopback_without_a_token_refuses_to_start(own_server):
    srv = own_server("--host", "0.0.0.0")
    r = subprocess.run(srv.command(), env=srv.environ(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "without a token" in r.stderr and "--token" in r.stderr
    with pytest.raises(httpx.HTTPError):
        httpx.get(srv.url + "/health", timeout=2)


def test_which_hosts_count_as_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")
    assert ServerConfig(data_dir="d", host="0.0.0.0").check() is not None
    assert ServerConfig(data_dir="d", host="0.0.0.0", token="t").check() is None
    assert ServerConfig(data_dir="d").check() is None  # loopback: a token is optional


def test_nodeflow_serve_applies_the_same_rule_and_the_cli_never_imports_the_server(cli, tmp_path):
    r = cli("serve", "--host", "0.0.0.0", "--port", "1", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "without a token" in r.stderr
    probe = (
        "import sys, nodeflow.cli.command; nodeflow.cli.command._parser(); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stderr


def test_a_plugin_module_that_does_not_import_stops_the_start(own_server):
    srv = own_server("--plugins", "no_such_node_module")
    r = subprocess.run(srv.command(), env=srv.environ(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no_such_node_module" in r.stderr
