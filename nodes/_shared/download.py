"""Download once into a cache, verify the sha256 strictly, write atomically."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from nodeflow.cache import user_cache_subdir


class DownloadError(RuntimeError):
    pass


def downloads_dir() -> Path:
    return user_cache_subdir("NODEFLOW_DOWNLOAD_DIR", "downloads")


def fetch(url: str, dest: Path, sha256: str | None,
          progress: Callable[[int, int], None] | None = None, timeout: float = 30.0,
          algorithm: str = "sha256") -> Path:
    """Return `dest`, downloading `url` there first if it is missing.

    The bytes must match `sha256` (when given) or nothing is kept. Checksum prefixes
    (as torchvision file names carry) are accepted: the digest must start with them.
    `algorithm` names another hashlib digest for files whose publisher gives only that
    (Keras publishes md5 sums).
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    if not url.lower().startswith(("http://", "https://")):
        # file:// and other schemes would let a graph read local files through the checksum error.
        raise DownloadError(f"only http(s) URLs can be downloaded, not {url!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    digest = hashlib.new(algorithm)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        got = digest.hexdigest()
        if sha256 and not got.startswith(sha256.lower()):
            raise DownloadError(f"checksum mismatch for {url}: expected {algorithm} {sha256}, got {got}; "
                                "the file was not kept")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url}: {reason}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
