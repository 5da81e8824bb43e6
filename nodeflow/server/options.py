"""OPTIONS on any route answers 204 with the methods that path takes (Allow), instead of
the 405 that routing gives (whose Allow named only one of them, or the editor's static GET)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import Match, Mount


class Options:
    def __init__(self, app: Any):
        self.app = app

    @staticmethod
    def _leaves(routes: list) -> list:
        """The routes themselves, through included routers (FastAPI wraps each included router)."""
        out = []
        for route in routes:
            inner = getattr(route, "original_router", None)
            out += Options._leaves(inner.routes) if inner is not None else [route]
        return out

    def _allowed(self, scope: dict) -> set[str]:
        methods: set[str] = set()
        static: set[str] = set()
        for route in self._leaves(scope["app"].router.routes):
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                match, _ = route.matches({**scope, "method": method})
                if match is Match.FULL:
                    # The editor's static files catch every path: they count only where nothing else does.
                    catch_all = isinstance(route, Mount) or getattr(route, "path", "") == "/{path:path}"
                    (static if catch_all else methods).add(method)
        methods = methods or static
        if "GET" in methods:
            methods.add("HEAD")
        return methods

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") != "OPTIONS" or "app" not in scope:
            return await self.app(scope, receive, send)
        methods = self._allowed(scope)
        if not methods:
            return await self.app(scope, receive, send)
        allow = ", ".join(sorted(methods | {"OPTIONS"})).encode()
        await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]})
        await send({"type": "http.response.body", "body": b""})
