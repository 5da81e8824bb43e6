"""The allocator setting for large CPU tensors: freed memory is reused, not faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
from support.paths import ROOT

from nodes._shared import allocator

# malloc and touch a 64 MB block twice, freeing it in between; print the page faults of the
# second touch.
PROBE = """
import ctypes, resource, sys
from nodes._shared import allocator
print(allocator.keep_freed_memory(sys.argv[1] == "keep"))
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
for i in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    libc.free(block)
print(after - before)
"""

PAGES = (64 << 20) // 4096

# The test decides where glibc is, independently of the code under test (which must then
# find its mallopt).
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
glibc_only = pytest.mark.skipif(not GLIBC, reason="glibc's malloc tuning: Linux with glibc only")


def _second_touch_faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    ).stdout.split()
    assert out[0] == "True", "keep_freed_memory() found no mallopt on a glibc system"
    return int(out[1])


@glibc_only
def test_kept_memory_is_reused_without_page_faults():
    assert _second_touch_faults("keep") < PAGES // 10


@glibc_only
def test_glibc_defaults_map_a_large_block_afresh():
    assert _second_touch_faults("default") > PAGES // 2


def test_the_user_can_keep_glibc_as_it_is(monkeypatch):
    monkeypatch.delenv("NODEFLOW_MALLOC", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for key in [k for k in __import__("os").environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    assert not allocator.chosen_by_user()
    monkeypatch.setenv("NODEFLOW_MALLOC", "default")
    assert allocator.chosen_by_user()
    monkeypatch.delenv("NODEFLOW_MALLOC")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert not allocator.chosen_by_user()  # not a glibc tunable spelling: MALLOC_..._ ends in _
    monkeypatch.setenv("MALLOC_ARENA_MAX_", "2")
    assert allocator.chosen_by_user()
    monkeypatch.delenv("MALLOC_ARENA_MAX_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert allocator.chosen_by_user()
