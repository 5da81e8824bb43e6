"""Token auth and request-body limits, as plain ASGI middleware (so they cover every route,
streaming and WebSocket included, and run before any parsing).

With a token, a request is let in with any one of:
- `Authorization: Bearer TOKEN`;
- `Authorization: Basic ...` with the token as the password (any user name), for ComfyUI
  clients that can send only Basic auth;
- the session cookie that /login sets for the token (browsers: the web editor);
- `?token=TOKEN`, on the event streams and WebSockets only (browsers can't set headers on
  EventSource or WebSocket). The parameter name must be spelled plainly: `tok%65n` is not it.
Wrong tokens are throttled per client address (sessions.Guesses: 429 with Retry-After). A
browser asking for a page without credentials is sent to /login."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from starlette.exceptions import HTTPException

from .sessions import Guesses, Sessions, client_address

# Open without a token: liveness, the API description (no data in it), the login page.
LOGIN_PATH = "/login"
PUBLIC_PATHS = {"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", LOGIN_PATH}
SESSION_COOKIE = "nodeflow_session"
SESSION_DAYS = 30
QUERY_TOKEN_PATHS = ("/events", "/jobs/ws", "/ws")


def session_cookie(session: str, secure: bool) -> str:
    return f"{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_DAYS * 86400}" + (
        "; Secure" if secure else ""
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


def query_token(query_string: bytes) -> str | None:
    """The value of a parameter spelled exactly `token` (never a percent-encoded spelling)."""
    for part in query_string.decode("latin-1").split("&"):
        name, sep, value = part.partition("=")
        if sep and name == "token":
            return unquote_plus(value)
    return None


def header_token(auth: str | None) -> str | None:
    """The token of an Authorization header: Bearer TOKEN, or Basic with TOKEN as password."""
    if not auth:
        return None
    scheme, _, rest = auth.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return ""  # malformed: a wrong token
        return decoded.partition(":")[2]
    return None


class TokenAuth:
    def __init__(self, app: Any, token: str | None, sessions: Sessions | None = None, guesses: Guesses | None = None):
        self.app = app
        self.token = token.encode() if token else None
        self.sessions = sessions
        self.guesses = guesses or Guesses()

    def _has_session(self, scope: dict) -> bool:
        return self.sessions is not None and self.sessions.valid(_cookie(scope, SESSION_COOKIE))

    def _provided(self, scope: dict) -> str | None:
        given = header_token(_header(scope, b"authorization"))
        if given is not None:
            return given
        path = scope.get("path", "")
        if path in QUERY_TOKEN_PATHS or path.endswith("/events"):
            return query_token(scope.get("query_string", b""))
        return None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket") or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        given = self._provided(scope)
        address = client_address(scope)
        if given is not None:
            wait = self.guesses.retry_after(address)
            if wait:
                return await refuse_guessing(scope, send, wait)
            if hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.token):
                self.guesses.succeeded(address)
                return await self.app(scope, receive, send)
            self.guesses.failed(address)
        elif self._has_session(scope):
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
        message = "a token is required: send 'Authorization: Bearer TOKEN' (or Basic auth with the token as password)"
        if given is not None:
            message = "the token is wrong"
        await _send_json(send, 401, {"error": "unauthorized", "message": message}, [(b"www-authenticate", b"Bearer")])


async def refuse_guessing(scope: dict, send: Callable, wait: int) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "too many wrong tokens: try again later"})
        return
    await _send_json(
        send,
        429,
        {"error": "too_many_attempts", "message": f"too many wrong tokens from this address: try again in {wait} s"},
        [(b"retry-after", str(wait).encode())],
    )


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
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
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
    """Keep the token out of every log line: the value of any query parameter whose name
    decodes to `token` (?token=, ?tok%65n=, in paths uvicorn logs, WebSocket handshakes
    included), and the token itself, plain or percent-encoded, wherever else it appears."""

    QUERY_PARAM = re.compile(r"(?<=[?&;])([^=&;\s\"'?#]+)=([^&;\s\"'#]*)")

    def __init__(self, token: str | None = None):
        super().__init__()
        self.token = token
        self.forms = sorted({token, quote(token, safe=""), quote_plus(token)}, key=len, reverse=True) if token else []

    def _param(self, m: re.Match) -> str:
        try:
            name = unquote_plus(m.group(1))
        except Exception:
            name = m.group(1)
        return f"{m.group(1)}=***" if name.strip().lower() == "token" else m.group(0)

    def redact(self, text: str) -> str:
        text = self.QUERY_PARAM.sub(self._param, text)
        for form in self.forms:
            text = text.replace(form, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        # Arguments are redacted in place: uvicorn's access formatter unpacks them.
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        return True
