"""Content-addressed cache keys.

Values are fingerprinted with type tags, so 1, 1.0, "1" and True never collide.
A value that can't be fingerprinted raises Unhashable: the caller must then not cache.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any


class Unhashable(TypeError):
    pass


def tagged(value: Any) -> Any:
    if value is None:
        return ["none"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", repr(value) if math.isfinite(value) else str(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, bytes):
        return ["bytes", hashlib.sha256(value).hexdigest()]
    if isinstance(value, (list, tuple)):
        return ["list", [tagged(v) for v in value]]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Unhashable("dict keys must be strings")
        return ["dict", [[k, tagged(value[k])] for k in sorted(value)]]
    raise Unhashable(f"cannot fingerprint a {type(value).__name__}")


def digest(obj: Any) -> str:
    text = json.dumps(tagged(obj), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


_file_memo: dict[tuple, str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, memoised on (path, size, mtime) within the process."""
    path = Path(path)
    st = os.stat(path)
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo_key not in _file_memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _file_memo[memo_key] = h.hexdigest()
    return _file_memo[memo_key]
