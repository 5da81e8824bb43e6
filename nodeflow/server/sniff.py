"""The type of a file's content, read from its first bytes (never from its name), for file
responses; and the headers every file response carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# Browsers must not guess another type than the one sent (an "image" holding markup).
FILE_HEADERS = {"X-Content-Type-Options": "nosniff"}

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def sniff(head: bytes) -> str:
    """The media type of content starting with `head`; application/octet-stream for anything
    that is not one of the image formats served."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, media in _MAGIC:
        if head.startswith(magic):
            return media
    return "application/octet-stream"


def sniffed_type(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return sniff(f.read(16))
    except OSError:
        return "application/octet-stream"


def content_disposition(name: str) -> str:
    """A Content-Disposition header for any file name (quotes and non-Latin-1 included)."""
    from urllib.parse import quote

    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


class NoSniff:
    """X-Content-Type-Options: nosniff on every response, file responses included."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-content-type-options" for k, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)
