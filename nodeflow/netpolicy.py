"""Which network addresses a download may reach: public ones only, unless the operator
allows private ones for a mirror of their own ($NODEFLOW_DOWNLOAD_ALLOW_PRIVATE=1).
Shared by the downloader (checked at connect time) and the server's policy (checked at
submit, for addresses written in a URL)."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit


def private_allowed() -> bool:
    return os.environ.get("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "") == "1"


def refused_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a download must not connect to `ip` (loopback, private, ...), or None."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def local_on_its_face(url: str) -> bool:
    """A URL whose host is local as written (an address literal, localhost). Names that
    resolve to such an address are refused when the download connects."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return True
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return refused_address(ipaddress.ip_address(host)) is not None
    except ValueError:
        return False
