"""The value caches at their edges: the memory budget exactly, one oversized value,
a write torn by a full disk, a corrupt payload that still unpickles."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nodeflow.cache as cache_module
from nodeflow.cache import DiskCache, MemoryCache, atomic_write, current_umask

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


def test_an_entry_with_another_magic_is_discarded(tmp_path):
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": 1})
    path = disk._path(KEY)
    path.write_bytes(b"NFCACHE0" + path.read_bytes()[8:])  # the checksum still matches the payload
    heard: list[str] = []
    assert disk.get(KEY, on_corrupt=heard.append) is None and not path.exists()
    assert heard == [f"discarded corrupt cache entry {KEY}.pkl: checksum mismatch"]


def test_an_entry_that_does_not_unpickle_is_discarded(tmp_path):
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": 1})
    path = disk._path(KEY)
    payload = b"not a pickle"
    path.write_bytes(b"NFCACHE1" + hashlib.sha256(payload).digest() + payload)
    heard: list[str] = []
    assert disk.get(KEY, on_corrupt=heard.append) is None and not path.exists()
    assert heard == [f"discarded corrupt cache entry {KEY}.pkl: unreadable (UnpicklingError)"]
    assert disk.get(KEY) is None  # missing: no error


def test_values_that_do_not_pickle_stay_out_of_the_disk_cache(tmp_path):
    disk = DiskCache(tmp_path)
    assert disk.put(KEY, {"f": lambda: 1}) is False
    assert disk.entries() == []
    assert disk.put(KEY, {"v": 1}) is True and disk.get(KEY) == {"v": 1}


def test_the_temp_file_sits_beside_the_entry_so_the_rename_is_atomic(tmp_path, monkeypatch):
    renames = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renames.append((src, dst)) or real(src, dst))
    DiskCache(tmp_path).put(KEY, {"v": 1})
    ((src, dst),) = renames
    assert os.path.dirname(src) == os.path.dirname(dst) == str(tmp_path / KEY[:2])
    assert os.path.basename(src).startswith(f".{KEY}.pkl.") and src.endswith(".tmp")  # hidden from entries()


def test_prune_frees_nothing_at_exactly_the_budget_and_reports_what_it_freed(tmp_path):
    disk = DiskCache(tmp_path)
    keys = ["aa" + "0" * 62, "bb" + "0" * 62]
    for i, key in enumerate(keys):
        disk.put(key, {"v": "x" * 1000})
        os.utime(disk._path(key), (time.time() - 100 + i,) * 2)
    sizes = sorted(e[1] for e in disk.entries())
    assert disk.prune(sum(sizes)) == 0 and len(disk.entries()) == 2
    assert disk.prune(sum(sizes) - 1) == sizes[0] and disk.get(keys[0]) is None and disk.get(keys[1])
    assert disk.prune(0) == sizes[1] and disk.entries() == []


def test_budgets_and_the_cache_dir_come_from_the_environment(monkeypatch, tmp_path):
    from nodeflow.cache import default_cache_dir, disk_budget, user_cache_subdir
    from nodeflow.executor import memory_budget
    from nodeflow.memtrim import total_bytes

    monkeypatch.delenv("NODEFLOW_DISK_CACHE_GB", raising=False)
    monkeypatch.delenv("NODEFLOW_MEMORY_CACHE_MB", raising=False)
    total = total_bytes()
    assert total and disk_budget() == 20 << 30
    assert memory_budget() == min(1 << 30, max(64 << 20, total // 16))  # sized from the machine
    monkeypatch.setenv("NODEFLOW_DISK_CACHE_GB", "0.5")
    monkeypatch.setenv("NODEFLOW_MEMORY_CACHE_MB", "1.5")
    assert disk_budget() == 1 << 29 and memory_budget() == 3 << 19
    monkeypatch.setenv("NODEFLOW_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("NODEFLOW_CACHE_DIR")
    from platformdirs import user_cache_dir

    assert default_cache_dir() == Path(user_cache_dir("nodeflow")) / "values"
    assert user_cache_subdir("NODEFLOW_CACHE_DIR", "models") == Path(user_cache_dir("nodeflow")) / "models"


def test_the_cache_root_is_created_on_first_write(tmp_path):
    disk = DiskCache(tmp_path / "not" / "yet")
    assert disk.get(KEY) is None and disk.entries() == [] and disk.prune(0) == 0
    assert disk.put(KEY, {"v": 1}) and disk.get(KEY) == {"v": 1}


def test_prune_frees_as_many_entries_as_it_takes(tmp_path):
    disk = DiskCache(tmp_path)
    keys = [c * 2 + "0" * 62 for c in "abcd"]
    for i, key in enumerate(keys):
        disk.put(key, {"v": "x" * 1000})
        os.utime(disk._path(key), (time.time() - 100 + i,) * 2)
    size = disk.entries()[0][1]
    assert disk.prune(size) == 3 * size
    assert [disk.get(k) is not None for k in keys] == [False, False, False, True]


def test_entries_vanishing_under_a_concurrent_prune_are_skipped(tmp_path, monkeypatch):
    """Another process deletes entries between our listing and our stat or unlink."""
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": 1})
    gone = tmp_path / "cd" / ("cd" + "0" * 62 + ".pkl")
    real_glob = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: [gone, *real_glob(self, pattern)])
    assert [e[0] for e in disk.entries()] == [disk._path(KEY)]
    monkeypatch.setattr(DiskCache, "entries", lambda self: [(gone, 10, 0.0), (disk._path(KEY), 10, 1.0)])
    assert disk.prune(0) == 20 and not disk._path(KEY).exists()


def test_a_corrupt_entry_already_discarded_by_another_reader_is_no_error(tmp_path, monkeypatch):
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": 1})
    path = disk._path(KEY)
    real_read = Path.read_bytes

    def read_then_lose_the_race(self):
        data = real_read(self)
        self.unlink()  # the other reader discards it first
        return data[:-1]

    monkeypatch.setattr(Path, "read_bytes", read_then_lose_the_race)
    assert disk.get(KEY) is None and not path.exists()


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    set_umask = os.umask  # a test may patch os.umask
    old = set_umask(0o022)
    set_umask(old)
    yield set_umask
    set_umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600), (0o027, 0o640)])
def test_entries_get_the_mode_a_plain_open_would_give(tmp_path, umask, mask, mode):
    """mkstemp makes 0600 files: the entry is chmodded to 0666 less the umask, like open()."""
    umask(mask)
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": 1})
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(disk._path(KEY).stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == mode
    atomic_write(tmp_path / "out.bin", b"data")
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == mode


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002, 0o000, 0o777])
def test_the_umask_is_read_without_being_set(umask, monkeypatch, mask):
    """Setting it, even briefly, would race with other threads creating files."""
    umask(mask)
    monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("os.umask called while /proc is readable"))
    assert current_umask() == mask


@pytest.mark.parametrize("status", [OSError("no /proc here"), "Name:\tpython\nUmask:\tzz\n", "Name:\tpython\n"])
def test_without_a_usable_proc_status_the_umask_is_read_by_setting_it_back(umask, monkeypatch, status):
    """No /proc (another OS, a sandbox), or a line it can't parse, or none: os.umask,
    set and put straight back."""
    umask(0o027)

    def fake_open(path, *args, **kwargs):
        assert path == "/proc/self/status"
        if isinstance(status, Exception):
            raise status
        return io.StringIO(status)

    monkeypatch.setattr(cache_module, "open", fake_open, raising=False)
    assert current_umask() == 0o027
    monkeypatch.undo()
    assert current_umask() == 0o027  # the umask the process had, not what the fallback set


def test_a_failed_rename_leaves_no_temp_file_and_its_error_is_the_one_raised(tmp_path, monkeypatch):
    def no_room(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_room)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(tmp_path / "out.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_a_temp_file_already_removed_by_a_cleaner_does_not_hide_the_error(tmp_path, monkeypatch):
    """Another process (a tmp cleaner, a concurrent prune) removed the temp file before the
    rename failed: the rename's error is raised, not FileNotFoundError from the cleanup."""

    def vanish_then_fail(src, dst):
        os.unlink(src)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", vanish_then_fail)
    with pytest.raises(OSError, match="No space left") as info:
        atomic_write(tmp_path / "out.bin", b"data")
    assert not isinstance(info.value, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []


def test_entries_are_pickled_with_the_highest_protocol(tmp_path):
    """Protocol 5 stores large buffers (arrays, bytes) without the extra copies of the
    default protocol."""
    disk = DiskCache(tmp_path)
    disk.put(KEY, {"v": b"x" * 100})
    payload = disk._path(KEY).read_bytes()[len(b"NFCACHE1") + 32 :]
    assert payload[:2] == pickle.PROTO + bytes([pickle.HIGHEST_PROTOCOL])
    assert pickle.loads(payload) == {"v": b"x" * 100}


def test_the_memory_cache_gives_memory_back_under_pressure():
    from nodeflow.cache import MemoryCache

    available = [8 << 30]
    cache = MemoryCache(1 << 30, min_available=1 << 30, available=lambda: available[0])
    for i in range(10):
        cache.put(f"k{i}", i, 10 << 20)
    assert len(cache) == 10 and cache.used == 100 << 20
    available[0] = (1 << 30) - (30 << 20)  # 30 MB short of the floor
    cache.put("new", "x", 10 << 20)
    assert cache.get("new") is None  # not inserted under pressure
    assert cache.used <= 50 << 20 and cache.pressure_evictions >= 5  # half the cache at least, oldest first
    assert cache.get("k0") is None and cache.get("k9") == 9
    available[0] = 8 << 30
    cache.put("new", "x", 10 << 20)
    assert cache.get("new") == "x"


def test_the_memory_floor_and_budget_follow_the_machine(monkeypatch):
    from nodeflow.cache import pressure_floor

    monkeypatch.delenv("NODEFLOW_MEMORY_FLOOR_MB", raising=False)
    assert pressure_floor(1 << 30) == 256 << 20
    assert pressure_floor(16 << 30) == (16 << 30) // 10
    assert pressure_floor(1 << 40) == 4 << 30
    monkeypatch.setenv("NODEFLOW_MEMORY_FLOOR_MB", "100")
    assert pressure_floor(1 << 40) == 100 << 20
