"""Download once into a cache, verify the sha256 strictly, write atomically; and never let
a URL turn the download against the machine it runs on.

- http and https only, on every redirect hop (redirects are followed here, one at a time);
- the host name is resolved, every address checked (no loopback, private, link-local,
  multicast or reserved address), and the connection made to the address checked, so a
  second DNS answer can't swap in another one ($NODEFLOW_DOWNLOAD_ALLOW_PRIVATE=1 lifts
  this for an operator's own mirror);
- a size cap ($NODEFLOW_DOWNLOAD_MAX_MB, default 100) and an overall deadline
  ($NODEFLOW_DOWNLOAD_DEADLINE_S, default 600), besides the timeout of each read;
- `cancel` is called between chunks (it raises to stop);
- a cached file is verified again on reuse; errors never echo what was fetched;
- nothing at all is fetched where $NODEFLOW_OFFLINE=1 (a server without --allow-downloads).
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from nodeflow.cache import current_umask, user_cache_subdir
from nodeflow.errors import shown
from nodeflow.netpolicy import private_allowed, refused_address

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
CHUNK = 1 << 16


class DownloadError(RuntimeError):
    pass


def downloads_dir() -> Path:
    return user_cache_subdir("NODEFLOW_DOWNLOAD_DIR", "downloads")


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def max_download_bytes() -> int:
    return int(_env_number("NODEFLOW_DOWNLOAD_MAX_MB", 100) * (1 << 20))


def download_deadline() -> float:
    return _env_number("NODEFLOW_DOWNLOAD_DEADLINE_S", 600)


def check_url(url: str) -> None:
    """DownloadError unless `url` is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        # file:// and other schemes would let a graph read local files through the checksum error.
        raise DownloadError(f"only http(s) URLs can be downloaded, not {shown(url)}")


def resolve_public(host: str, port: int) -> str:
    """The address to connect to: every address the name resolves to must be public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DownloadError(f"cannot resolve {shown(host)}: {getattr(exc, 'strerror', None) or exc}") from None
    addresses = [info[4][0] for info in infos]
    if not private_allowed():
        for a in addresses:
            why = refused_address(ipaddress.ip_address(a.split("%")[0]))
            if why:
                raise DownloadError(f"{shown(host)} is a {why} address ({a}): downloads only reach public hosts")
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # the name's certificate


def _open(url: str, timeout: float, deadline: float) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Follow redirects hop by hop, checking each; the final 200 response."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        parts = urlsplit(url)
        https = parts.scheme.lower() == "https"
        try:
            port = parts.port or (443 if https else 80)
        except ValueError:
            raise DownloadError(f"{shown(url)} has an invalid port") from None
        address = resolve_public(parts.hostname, port)
        left = deadline - time.monotonic()
        if left <= 0:
            raise DownloadError("the download took too long")
        conn = (_PinnedHTTPS if https else _PinnedHTTP)(parts.hostname, port, address, min(timeout, left))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers={"User-Agent": "nodeflow", "Accept-Encoding": "identity"})
            resp = conn.getresponse()
        except Exception:
            conn.close()
            raise
        if resp.status in (301, 302, 303, 307, 308):
            location = resp.getheader("Location")
            conn.close()
            if not location:
                raise DownloadError(f"HTTP {resp.status} without a Location")
            url = urljoin(url, location)
            continue
        if resp.status != 200:
            conn.close()
            raise DownloadError(f"the server answered HTTP {resp.status}")  # its words are not echoed
        return conn, resp
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects")


def sha256_file(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _matches(got: str, sha256: str | None) -> bool:
    # Checksum prefixes (as torchvision file names carry) are accepted: the digest must start with them.
    return not sha256 or got.startswith(sha256.lower())


def fetch(
    url: str,
    dest: Path,
    sha256: str | None,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 30.0,
    cancel: Callable[[], None] | None = None,
    max_bytes: int | None = None,
    deadline_s: float | None = None,
    algorithm: str = "sha256",
) -> Path:
    """Return `dest`, downloading `url` there first if it is missing (or fails its checksum).

    The bytes must match `sha256` (when given) or nothing is kept. max_bytes: the size cap
    (default $NODEFLOW_DOWNLOAD_MAX_MB); only a caller whose URL no client chose raises it.
    `algorithm` names another hashlib digest for files whose publisher gives only that
    (Keras publishes md5 sums).
    """
    dest = Path(dest)
    if dest.exists():
        if sha256 is None or _matches(sha256_file(dest, algorithm), sha256):
            return dest
        dest.unlink(missing_ok=True)  # changed since it was cached: fetched again
    check_url(url)
    if os.environ.get("NODEFLOW_OFFLINE") == "1":  # a server without --allow-downloads
        raise DownloadError(f"could not download {shown(url)}: downloads are turned off here")
    cap = max_bytes if max_bytes is not None else max_download_bytes()
    deadline = time.monotonic() + (deadline_s if deadline_s is not None else download_deadline())
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    digest = hashlib.new(algorithm)
    conn = None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as out:
            conn, resp = _open(url, timeout, deadline)
            length = resp.getheader("Content-Length") or ""
            total = int(length) if length.isdigit() else 0
            if total > cap:
                raise DownloadError(f"the file is {total} bytes, over the download limit of {cap} bytes")
            done = 0
            while chunk := resp.read1(CHUNK):
                done += len(chunk)
                if done > cap:
                    raise DownloadError(f"the download passed the limit of {cap} bytes")
                if time.monotonic() > deadline:
                    raise DownloadError("the download took too long")
                out.write(chunk)
                digest.update(chunk)
                if progress:
                    progress(done, total)
                if cancel:
                    cancel()
        if not _matches(digest.hexdigest(), sha256):
            raise DownloadError(
                f"checksum mismatch: the file at {shown(url)} is not the one expected "
                f"({algorithm} {sha256}); the file was not kept"
            )
        os.replace(tmp, dest)
        return dest
    except DownloadError as exc:
        raise DownloadError(f"could not download {shown(url)}: {exc}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = (
            "timed out"
            if isinstance(exc, TimeoutError)
            else getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc.__class__.__name__
        )
        raise DownloadError(f"could not download {shown(url)}: {reason}") from None
    finally:
        if conn is not None:
            conn.close()
        Path(tmp).unlink(missing_ok=True)
