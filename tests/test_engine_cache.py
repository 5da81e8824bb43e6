"""The value caches at their edges: the memory budget exactly, one oversized value,
a write torn by a full disk, a corrupt payload that still unpickles."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from nodeflow.cache import DiskCache, MemoryCache

KEY = "ab" + "0" * 62


def test_memory_cache_holds_exactly_its_budget():
    cache = MemoryCache(max_bytes=100)
    cache.put("a", ({"v": 1}, "cpu"), 40)
    cache.put("b", ({"v": 2}, "cpu"), 60)  # 100 bytes: full, nothing evicted
    assert cache.used == 100 and len(cache) == 2
    assert cache.get("b") is not None and cache.get("a") is not None  # a is now the most recent
    cache.put("c", ({"v": 3}, "cpu"), 1)  # one byte over: the least recently used goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.used == 41
    whole = MemoryCache(max_bytes=100)
    whole.put("all", ({"v": 4}, "cpu"), 100)  # a value the size of the budget fits
    assert whole.get("all") == ({"v": 4}, "cpu") and whole.used == 100


def test_one_oversized_value_does_not_flush_the_memory_cache():
    cache = MemoryCache(max_bytes=100)
    cache.put("a", ({"v": 1}, "cpu"), 30)
    cache.put("b", ({"v": 2}, "cpu"), 30)
    cache.put("huge", ({"v": 3}, "cpu"), 101)
    assert cache.get("huge") is None
    assert cache.get("a") is not None and cache.get("b") is not None and cache.used == 60


def test_replacing_a_key_counts_its_bytes_once():
    cache = MemoryCache(max_bytes=100)
    cache.put("a", ({"v": 1}, "cpu"), 60)
    cache.put("a", ({"v": 2}, "cpu"), 70)
    assert cache.used == 70 and cache.get("a") == ({"v": 2}, "cpu")
    cache.clear()
    assert cache.used == 0 and len(cache) == 0 and cache.get("a") is None


def test_a_write_torn_by_a_full_disk_is_never_observed(tmp_path):
    """A child process whose files may not exceed 64 KiB (RLIMIT_FSIZE: a full disk, in
    effect) overwrites an entry with 1 MB: the write fails part-way, and readers still
    see the old entry, whole; no temp file is left behind."""
    DiskCache(tmp_path).put(KEY, {"v": "old"})
    child = textwrap.dedent(f"""
        import resource, signal, sys
        from nodeflow.cache import DiskCache
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
        try:
            DiskCache(sys.argv[1]).put({KEY!r}, {{"v": b"x" * (1 << 20)}})
        except OSError as exc:
            print("write failed:", exc.strerror)
    """)
    out = subprocess.run([sys.executable, "-c", child, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert "write failed: File too large" in out.stdout, out.stdout + out.stderr
    assert DiskCache(tmp_path).get(KEY) == {"v": "old"}
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{KEY}.pkl"]


def test_a_payload_changed_on_disk_is_discarded_even_if_it_unpickles(tmp_path):
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": "x" * 1000})
    path = disk._path(KEY)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"x" * 1000, b"x" * 500 + b"y" + b"x" * 499))  # still a valid pickle
    heard: list[str] = []
    assert disk.get(KEY, on_corrupt=heard.append) is None
    assert not path.exists() and "checksum mismatch" in heard[0]


def test_a_truncated_entry_is_discarded(tmp_path):
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": "x" * 1000})
    path = disk._path(KEY)
    path.write_bytes(path.read_bytes()[:20])  # shorter than its header
    assert disk.get(KEY) is None and not path.exists()
