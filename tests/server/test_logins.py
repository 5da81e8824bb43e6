"""Logins with a token (issue 30 item 6, issue 29 item 3): HTTP Basic auth with the token as
password, wrong tokens throttled per address (429 + Retry-After), sessions that logout and a
new token end on the server, and the token kept out of logs and out of undocumented places."""

from __future__ import annotations

import logging
import time
from contextlib import closing

import httpx
import pytest
from support.inprocess import another_client, app_client
from support.paths import ASSETS

from nodeflow.server.auth import RedactToken
from nodeflow.server.sessions import Guesses

TOKEN = "s3cret-token-for-logins"


@pytest.fixture
def app(tmp_path):
    with app_client(tmp_path / "data", token=TOKEN) as c:
        yield c


def test_basic_auth_takes_the_token_as_password(app):
    with closing(another_client(app)) as anon:
        for user in ("", "comfy", "any name"):
            r = anon.get("/api/object_info/Sobel", auth=(user, TOKEN))
            assert r.status_code == 200, r.text
            assert "Sobel" in r.json()
        r = anon.get("/queue", auth=("comfy", "wrong"))
        assert r.status_code == 401 and r.json()["message"] == "the token is wrong"
        r = anon.get("/queue", headers={"Authorization": "Basic !!not-base64!!"})
        assert r.status_code == 401


def test_basic_auth_against_a_live_server(token_server):
    """What comfy-api-simplified does: httpx with auth=(user, password)."""
    with httpx.Client(base_url=token_server.url, auth=("comfy", token_server.token), timeout=60) as client:
        assert client.get("/prompt").json()["exec_info"]["queue_remaining"] >= 0
        assert client.get("/object_info/Sobel").status_code == 200


def test_wrong_tokens_are_throttled_per_address(app):
    with closing(another_client(app, token="wrong")) as wrong, closing(another_client(app)) as anon:
        limit = app.app.state.guesses.max_failures
        for _ in range(limit):
            assert wrong.get("/jobs").status_code == 401
        r = wrong.get("/jobs")
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert "try again in" in r.json()["message"]
        # the right token from the same address waits too (no guessing through it)
        assert app.get("/jobs").status_code == 429
        # and so do /login and Basic auth
        r = anon.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert r.status_code == 429 and r.headers["retry-after"]
        assert anon.get("/jobs", auth=("u", "guess")).status_code == 429
        # requests without credentials are not guesses: they get the usual 401
        assert anon.get("/jobs").status_code == 401


def test_the_throttle_lets_an_address_in_again_after_its_window():
    guesses = Guesses(max_failures=3, window=0.0)
    for _ in range(5):
        guesses.failed("10.0.0.1")
    assert guesses.retry_after("10.0.0.1") == 0  # a window of 0: every failure has aged out
    guesses = Guesses(max_failures=3, window=3600)
    for _ in range(3):
        guesses.failed("10.0.0.1")
    assert guesses.retry_after("10.0.0.1") > 3000 and guesses.retry_after("10.0.0.2") == 0
    guesses.succeeded("10.0.0.1")
    assert guesses.retry_after("10.0.0.1") == 0


def test_login_failures_count_too(app):
    with closing(another_client(app)) as anon:
        limit = app.app.state.guesses.max_failures
        for _ in range(limit):
            assert anon.post("/login", data={"token": "guess"}, follow_redirects=False).status_code == 401
        r = anon.post("/login", data={"token": "guess"}, follow_redirects=False)
        assert r.status_code == 429 and "try again" in r.text


def _login(client) -> str:
    r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert TOKEN not in r.headers["set-cookie"]
    return cookie


def test_logout_ends_the_session_on_the_server(app):
    with closing(another_client(app)) as browser, closing(another_client(app)) as thief:
        session = _login(browser)
        other = _login(browser)
        assert session != other
        thief.cookies.set("nodeflow_session", session)
        assert thief.get("/jobs").status_code == 200  # a copied cookie works while the session lives
        browser.cookies.clear()  # the jar holds the second login's cookie: send only the first
        browser.cookies.set("nodeflow_session", session)
        assert browser.post("/logout").status_code == 204
        thief.cookies.set("nodeflow_session", session)
        assert thief.get("/jobs").status_code == 401  # ended on the server, not only in the browser
        thief.cookies.set("nodeflow_session", other)
        assert thief.get("/jobs").status_code == 200  # the other session lives on
        stored = (app.config.data_dir / "sessions.json").read_text()
        assert other not in stored and TOKEN not in stored
        assert (app.config.data_dir / "sessions.json").stat().st_mode & 0o077 == 0


def test_sessions_survive_a_restart_but_not_a_new_token(tmp_path):
    data = tmp_path / "data"
    with app_client(data, token=TOKEN) as first, closing(another_client(first)) as browser:
        session = _login(browser)
    with app_client(data, token=TOKEN) as again, closing(another_client(again)) as browser:
        browser.cookies.set("nodeflow_session", session)
        assert browser.get("/jobs").status_code == 200
    with app_client(data, token="a-new-token") as changed, closing(another_client(changed)) as browser:
        browser.cookies.set("nodeflow_session", session)
        assert browser.get("/jobs").status_code == 401


def test_the_token_only_in_its_documented_places(app):
    with closing(another_client(app)) as anon:
        assert anon.get(f"/jobs?token={TOKEN}").status_code == 401  # not a stream
        assert anon.get(f"/events?tok%65n={TOKEN}").status_code == 401  # a disguised name
        assert anon.get("/events?token=wrong").status_code == 401


def test_the_token_is_redacted_however_it_is_spelled():
    redact = RedactToken("t0k/en+x")
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "GET %s HTTP/1.1" 200',
        ("127.0.0.1", "/events?tok%65n=abc&TOKEN=def&x=1&token=t0k%2Fen%2Bx"),
        None,
    )
    redact.filter(record)
    text = record.getMessage()
    assert "abc" not in text and "def" not in text and "t0k" not in text
    assert "x=1" in text and text.count("***") == 3
    record = logging.LogRecord("nodeflow", logging.INFO, __file__, 1, "saw t0k/en+x and t0k%2Fen%2Bx", (), None)
    redact.filter(record)
    assert "t0k" not in record.getMessage()


def test_client_errors_cost_the_live_log_a_line_and_no_token(token_server):
    """The server's own log (--log-level info): bad requests add one access line each, no
    traceback; a token sent under a disguised name is redacted."""
    size = token_server.log.stat().st_size
    png = (ASSETS / "astronaut.png").read_bytes()
    with token_server.client() as client:
        deep = "/".join(["a"] * 1500)
        assert (
            client.post("/upload/image", files={"image": ("x.png", png)}, data={"subfolder": deep}).status_code == 400
        )
        assert client.get("/view", params={"filename": "a\0b.png", "type": "input"}).status_code == 400
        assert client.get("/view", params={"filename": "x.png", "preview": "webp;²"}).status_code in (400, 404)
    with token_server.client(token=None) as anon:
        assert anon.get(f"/events?tok%65n={token_server.token}").status_code == 401
    deadline = time.monotonic() + 10
    while token_server.log.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.1)
    added = token_server.log.read_bytes()[size:].decode("utf-8", "replace")
    assert "Traceback" not in added
    assert len(added) < 4000, added[:2000]
    assert token_server.token not in added
