"""The two value caches: an in-memory LRU bounded in bytes, and a persistent
on-disk store. Both map a node's content key to its outputs {name: value}."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MAGIC = b"NFCACHE1"


class MemoryCache:
    """An LRU of values bounded in bytes, that gives memory back under pressure: before each
    insert it reads the memory the system has available (/proc/meminfo), and when that is
    under `min_available` it evicts least recently used entries (the cache's size above what
    is missing, at least) and skips the insert, then asks the C allocator to return the freed
    memory (as ComfyUI's RAM-pressure cache does)."""

    def __init__(
        self,
        max_bytes: int = 2 << 30,
        min_available: int | None = None,
        available: Callable[[], int | None] | None = None,
    ):
        from . import memtrim

        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # key -> (value, bytes)
        self._lock = threading.Lock()
        self.available = available or memtrim.available_bytes
        total = memtrim.total_bytes() or (8 << 30)
        self.min_available = min_available if min_available is not None else pressure_floor(total)
        self.pressure_evictions = 0

    def _relieve(self) -> bool:
        """Under memory pressure: evict, trim, and say so (the caller skips its insert)."""
        available = self.available()
        if available is None or available >= self.min_available:
            return False
        target = max(self.min_available - available, self.used // 2)
        freed = 0
        while self._items and freed < target:
            _, (_, size) = self._items.popitem(last=False)
            self.used -= size
            freed += size
            self.pressure_evictions += 1
        from . import memtrim

        memtrim.trim()
        return True

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
            if self._relieve():
                return
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


def pressure_floor(total: int) -> int:
    """Memory the system must keep available before the memory cache inserts anything:
    $NODEFLOW_MEMORY_FLOOR_MB, else 10% of the machine's memory, between 256 MiB and 4 GiB."""
    env = os.environ.get("NODEFLOW_MEMORY_FLOOR_MB", "")
    try:
        return int(float(env) * (1 << 20)) if env else min(4 << 30, max(256 << 20, total // 10))
    except ValueError:
        return 256 << 20


def memory_budget() -> int:
    """Bytes for the in-memory value cache: $NODEFLOW_MEMORY_CACHE_MB, else a sixteenth of the
    machine's memory, between 64 MiB and 1 GiB."""
    from . import memtrim

    env = os.environ.get("NODEFLOW_MEMORY_CACHE_MB", "")
    try:
        if env:
            return int(float(env) * (1 << 20))
    except ValueError:
        pass
    total = memtrim.total_bytes() or (4 << 30)
    return min(1 << 30, max(64 << 20, total // 16))


def disk_reserve(root: Path) -> int:
    """Bytes the disk cache leaves free on its disk, for outputs and the job store:
    $NODEFLOW_DISK_RESERVE_MB, else 5% of the disk, at least 1 MiB and at most 1 GiB."""
    env = os.environ.get("NODEFLOW_DISK_RESERVE_MB", "")
    try:
        return int(float(env) * (1 << 20)) if env else min(1 << 30, max(1 << 20, shutil.disk_usage(root).total // 20))
    except (OSError, ValueError):
        return 1 << 20


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class DiskCache:
    """One file per key: magic, sha256 of the payload, pickled outputs.
    Written atomically (temp file + rename); a corrupt entry is deleted, not trusted.

    The cache comes after outputs and the job store: it never writes into the last
    `reserve` bytes of its disk. When an entry would, the least recently used entries are
    evicted to make room, and if that is not enough the entry is not written (the value
    stays in the memory cache); a full disk during a write leaves no partial entry."""

    def __init__(self, root: str | Path, reserve: int | None = None):
        self.root = Path(root)
        self.reserve = reserve
        self.skipped = 0  # entries not written for want of space

    def _free(self) -> int:
        where = self.root
        while not where.exists() and where.parent != where:
            where = where.parent  # the cache folder is made on the first write
        try:
            return shutil.disk_usage(where).free
        except OSError:
            return 0

    def _room_for(self, size: int) -> bool:
        """Make room for `size` bytes above the reserve, evicting the oldest entries; False
        if even an empty cache would leave too little."""
        reserve = self.reserve if self.reserve is not None else disk_reserve(self.root)
        if self._free() - size >= reserve:
            return True
        for path, _, _ in sorted(self.entries(), key=lambda e: e[2]):
            path.unlink(missing_ok=True)
            if self._free() - size >= reserve:
                return True
        return False

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
        blob_size = len(_MAGIC) + 32 + len(payload)
        if not self._room_for(blob_size + 8192):
            self.skipped += 1
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, _MAGIC + hashlib.sha256(payload).digest() + payload)
        except OSError as exc:
            if not _disk_full(exc):
                raise
            self.skipped += 1  # atomic_write removed its temp file: no partial entry
            return False
        return True

    def remove(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

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
