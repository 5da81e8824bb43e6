"""The login page: trades the server's token for a session cookie, so a browser (the web
editor, which can't send a bearer header) can use the API."""

from __future__ import annotations

import hmac
import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..auth import LOGIN_PATH, SESSION_COOKIE, _cookie, session_cookie
from ..deps import Config
from ..sessions import client_address

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>nodeflow: log in</title></head>
<body style="font-family: sans-serif; background: #202020; color: #ddd;
  display: grid; place-items: center; height: 90vh">
<form method="post" action="{path}" style="display: grid; gap: .6em; width: 20em">
<h2 style="margin: 0">nodeflow</h2>
<label for="token">This server needs its token (<code
  style="white-space: nowrap">nodeflow serve --token</code>).</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Log in</button>
<p style="color: #f88">{error}</p>
</form></body></html>"""


router = APIRouter()


def page(error: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(path=LOGIN_PATH, error=html.escape(error)),
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@router.get(LOGIN_PATH, include_in_schema=False)
def login_page(config: Config) -> Any:
    return page() if config.token else RedirectResponse("/", status_code=303)


@router.post(LOGIN_PATH, include_in_schema=False)
async def login(request: Request, config: Config) -> Any:
    token = config.token
    if not token:
        return RedirectResponse("/", status_code=303)
    guesses, sessions = request.app.state.guesses, request.app.state.sessions
    address = client_address(dict(request.scope))
    wait = guesses.retry_after(address)
    if wait:
        reply = page(f"Too many wrong tokens: try again in {wait} seconds.", 429)
        reply.headers["Retry-After"] = str(wait)
        return reply
    given = str((await request.form()).get("token") or "")
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode()):
        guesses.failed(address)
        return page("That is not the token.", 401)
    guesses.succeeded(address)
    done = RedirectResponse("/", status_code=303)
    done.headers["set-cookie"] = session_cookie(sessions.create(), secure=request.url.scheme == "https")
    return done


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Any:
    """Ends the session on the server (a copy of the cookie stops working too)."""
    sessions = request.app.state.sessions
    if sessions is not None:
        sessions.end(_cookie(dict(request.scope), SESSION_COOKIE))
    reply = Response(status_code=204)
    reply.headers["set-cookie"] = f"{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    return reply
