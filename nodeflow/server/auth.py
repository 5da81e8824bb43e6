"""Bearer-token auth and request-body limits, as plain ASGI middleware (so they
cover every route, streaming and WebSocket included, and run before any parsing).

Browsers (the web editor) can't send the bearer header: /login trades the token for a
session cookie (HttpOnly, SameSite=Strict), which every route then accepts too. A browser
asking for a page without either is sent to /login."""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException

# Open without a token: liveness, the API description (no data in it), the login page.
LOGIN_PATH = "/login"
PUBLIC_PATHS = {"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", LOGIN_PATH}
SESSION_COOKIE = "nodeflow_session"
SESSION_DAYS = 30


def session_value(token: str) -> str:
    """The cookie a login sets: derived from the token (so it survives restarts and a new
    token ends every session) without revealing it."""
    return hmac.new(token.encode(), b"nodeflow browser session", "sha256").hexdigest()


def session_cookie(token: str, secure: bool) -> str:
    return (
        f"{SESSION_COOKIE}={session_value(token)}; HttpOnly; SameSite=Strict; Path=/; "
        f"Max-Age={SESSION_DAYS * 86400}" + ("; Secure" if secure else "")
    )


def _cookie(scope: dict, name: str) -> str | None:
    for part in (_header(scope, b"cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _send_json(send: Callable, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _header(scope: dict, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


class TokenAuth:
    def __init__(self, app: Any, token: str | None):
        self.app = app
        self.token = token.encode() if token else None
        self.session = session_value(token).encode() if token else None

    def _has_session(self, scope: dict) -> bool:
        cookie = _cookie(scope, SESSION_COOKIE)
        return cookie is not None and self.session is not None and hmac.compare_digest(cookie.encode(), self.session)

    def _provided(self, scope: dict) -> str | None:
        auth = _header(scope, b"authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        path = scope.get("path", "")
        # Browsers can't set headers on EventSource or WebSocket: those take ?token= too.
        if path in ("/events", "/jobs/ws", "/ws") or path.endswith("/events"):
            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            return values[0] if values else None
        return None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket") or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        given = self._provided(scope)
        if (given is not None and hmac.compare_digest(given.encode(), self.token)) or self._has_session(scope):
            return await self.app(scope, receive, send)
        if (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and "text/html" in (_header(scope, b"accept") or "")
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", LOGIN_PATH.encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "bearer token required"})
            return
        message = "a bearer token is required: send 'Authorization: Bearer TOKEN'"
        if given is not None:
            message = "the bearer token is wrong"
        await _send_json(send, 401, {"error": "unauthorized", "message": message}, [(b"www-authenticate", b"Bearer")])


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on instead of making it a 400."""

    def __init__(self, limit: int):
        super().__init__(413, _too_large(limit)["message"])


class BodyLimit:
    """413 for a body over the limit: at once from Content-Length, or as soon as
    a chunked body passes it (the app never sees more than the limit)."""

    def __init__(self, app: Any, default: int, per_path: dict[str, int]):
        self.app = app
        self.default = default
        self.per_path = per_path

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.per_path.get(scope["path"], self.default)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _send_json(send, 413, _too_large(limit))
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_json(send, 413, _too_large(limit))


def _too_large(limit: int) -> dict:
    return {"error": "body_too_large", "message": f"the request body is over the limit of {limit} bytes"}


class RedactToken(logging.Filter):
    """Keep the token out of every log line: ?token= in a logged path (SSE and WebSocket
    from browsers; uvicorn logs WebSocket handshakes on uvicorn.error, not the access
    log), and the token itself wherever else it appears."""

    QUERY_TOKEN = re.compile(r"((?:^|[?&;])token=)[^&\s\"']*", re.IGNORECASE)

    def __init__(self, token: str | None = None):
        super().__init__()
        self.token = token

    def redact(self, text: str) -> str:
        text = self.QUERY_TOKEN.sub(r"\1***", text)
        return text.replace(self.token, "***") if self.token else text

    def filter(self, record: logging.LogRecord) -> bool:
        # Arguments are redacted in place: uvicorn's access formatter unpacks them.
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        return True
