"""Give freed memory back to the system: glibc keeps what a large decode freed in its heap
(and per thread arena) until something trims it. Linux with glibc only; elsewhere a no-op."""

from __future__ import annotations

import ctypes
import functools
import sys


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # absent on musl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim() -> bool:
    """Return freed heap memory to the kernel (malloc_trim(0)). True if anything was released."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False


def _meminfo(field: str, psutil_name: str) -> int | None:
    """One /proc/meminfo field in bytes (Linux), else psutil's figure, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        import psutil

        return int(getattr(psutil.virtual_memory(), psutil_name))
    except Exception:
        return None


def available_bytes() -> int | None:
    """Memory the system can still give (MemAvailable)."""
    return _meminfo("MemAvailable", "available")


def total_bytes() -> int | None:
    """The machine's memory (MemTotal)."""
    return _meminfo("MemTotal", "total")
