"""The two value caches: an in-memory LRU bounded in bytes, and a persistent
on-disk store. Both map a node's content key to its outputs {name: value}."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MAGIC = b"NFCACHE1"


class MemoryCache:
    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # key -> (value, bytes)
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, value: Any, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old:
                self.used -= old[1]
            self._items[key] = (value, nbytes)
            self.used += nbytes
            while self.used > self.max_bytes:
                _, (_, size) = self._items.popitem(last=False)
                self.used -= size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.used = 0

    def __len__(self) -> int:
        return len(self._items)


class DiskCache:
    """One file per key: magic, sha256 of the payload, pickled outputs.
    Written atomically (temp file + rename); a corrupt entry is deleted, not trusted."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pkl"

    def get(self, key: str, on_corrupt: Callable[[str], None] | None = None) -> dict[str, Any] | None:
        """The outputs stored under `key`, or None. on_corrupt(message) hears of discarded entries."""
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        head = len(_MAGIC) + 32
        payload = blob[head:]
        if blob[: len(_MAGIC)] != _MAGIC or hashlib.sha256(payload).digest() != blob[len(_MAGIC) : head]:
            _discard(path, "checksum mismatch", on_corrupt)
            return None
        try:
            outputs = pickle.loads(payload)
        except Exception as exc:  # a stale class or module: not trusted either
            _discard(path, f"unreadable ({exc.__class__.__name__})", on_corrupt)
            return None
        os.utime(path)  # mtime = last use, so prune() drops the least recently used
        return outputs

    def put(self, key: str, outputs: dict[str, Any]) -> bool:
        try:
            payload = pickle.dumps(outputs, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return False  # not picklable: stays in memory only
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, _MAGIC + hashlib.sha256(payload).digest() + payload)
        return True

    def entries(self) -> list[tuple[Path, int, float]]:
        """(path, bytes, last use) of every entry."""
        found = []
        for path in self.root.glob("*/*.pkl"):
            try:
                st = path.stat()
            except OSError:
                continue
            found.append((path, st.st_size, st.st_mtime))
        return found

    def prune(self, max_bytes: int) -> int:
        """Delete least recently used entries until the cache fits; return bytes freed."""
        entries = sorted(self.entries(), key=lambda e: e[2])
        total, freed = sum(e[1] for e in entries), 0
        for path, size, _ in entries:
            if total - freed <= max_bytes:
                break
            path.unlink(missing_ok=True)
            freed += size
        return freed


def disk_budget() -> int:
    """Bytes for the disk cache: $NODEFLOW_DISK_CACHE_GB, default 20."""
    return int(float(os.environ.get("NODEFLOW_DISK_CACHE_GB", "20")) * (1 << 30))


def _discard(path: Path, why: str, on_corrupt: Callable[[str], None] | None) -> None:
    path.unlink(missing_ok=True)
    if on_corrupt:
        on_corrupt(f"discarded corrupt cache entry {path.name}: {why}")


def current_umask() -> int:
    """The process umask, read without changing it (os.umask can only set it, and setting
    it even briefly would race with other threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over `path`.
    The file gets the permissions a plain open() would give (mkstemp's are 0600)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def user_cache_subdir(env_var: str, name: str) -> Path:
    """$env_var if set, else <the user cache dir>/nodeflow/<name>."""
    env = os.environ.get(env_var)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("nodeflow")) / name


def default_cache_dir() -> Path:
    return user_cache_subdir("NODEFLOW_CACHE_DIR", "values")
