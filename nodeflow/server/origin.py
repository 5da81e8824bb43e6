"""Host allowlist and Origin checks, as plain ASGI middleware in front of every route.

- Host: every HTTP request and WebSocket handshake must name an allowed host (loopback
  names, the host the server is bound to, and the operator's --allowed-hosts), so a DNS
  rebinding page (evil.example resolving to 127.0.0.1) can't talk to the API at all.
- Origin: a browser sends it on cross-site requests and on every WebSocket handshake.
  State-changing requests (any method but GET, HEAD, OPTIONS) and WebSocket handshakes
  with an Origin must come from the server's own origin or an allowed one, so a page on
  another site can't submit jobs or read the event stream. Requests without an Origin
  (curl, scripts) are not browsers' cross-site requests and pass.

The checks go by method and scope type, not by a list of routes, so routes that other
packages add later are covered too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from .auth import _header, _send_json

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WILDCARD_BIND = ("0.0.0.0", "::", "")


def split_host(value: str) -> tuple[str, str | None]:
    """'Example.org:8188' -> ('example.org', '8188'); '[::1]:80' -> ('::1', '80')."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, None  # a bare name, or a bare IPv6 address


def _normal(host: str) -> str:
    host = host.strip().lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def allowed_host_names(bound_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names, the bound host (unless it is a wildcard address), and `extra`."""
    names = {_normal(h) for h in LOOPBACK_NAMES}
    if bound_host not in WILDCARD_BIND:
        names.add(_normal(bound_host))
    names |= {_normal(h) for h in extra if h.strip()}
    return frozenset(names)


class HostOriginGuard:
    """400 for a Host not allowed; 403 for a foreign Origin on a state-changing request or
    a WebSocket handshake (closed with 1008 before it is accepted)."""

    def __init__(self, app: Any, allowed_hosts: Iterable[str], allowed_origins: Iterable[str] = ()):
        self.app = app
        self.hosts = frozenset(_normal(h) for h in allowed_hosts)
        self.any_host = "*" in self.hosts
        self.origins = frozenset(o.strip().lower().rstrip("/") for o in allowed_origins if o.strip())

    def host_allowed(self, host_header: str | None) -> bool:
        if self.any_host:
            return True
        if not host_header:
            return False
        host, _ = split_host(host_header)
        return _normal(host) in self.hosts

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
            return False  # "null" (sandboxed frames, file:) and anything odd
        # Same origin: the page was served by this server under the Host it asked for.
        return host_header is not None and parts.netloc == host_header.strip().lower()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = _header(scope, b"host")
        if not self.host_allowed(host):
            return await _refuse(
                scope,
                send,
                400,
                "forbidden_host",
                f"the Host header {_shown(host)} is not one this server answers to "
                "(the operator can add it with --allowed-hosts)",
            )
        origin = _header(scope, b"origin")
        changes_state = kind == "websocket" or scope.get("method", "GET").upper() not in SAFE_METHODS
        if origin is not None and changes_state and not self.origin_allowed(origin, host):
            return await _refuse(
                scope,
                send,
                403,
                "forbidden_origin",
                f"requests from the origin {_shown(origin)} are not allowed (cross-site requests are refused)",
            )
        return await self.app(scope, receive, send)


def _shown(value: str | None) -> str:
    if value is None:
        return "(missing)"
    return repr(value if len(value) <= 100 else value[:100] + "...")


async def _refuse(scope: dict, send: Callable, status: int, code: str, message: str) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008, "reason": code})
        return
    await _send_json(send, status, {"error": code, "message": message})
