"""glibc's allocator tuned for large tensors on the CPU. By default glibc hands every
allocation over 32 MB back to the kernel when it is freed, and trims freed heap above 128 kB,
so each step of an image optimization maps its feature maps afresh and faults in every page
again: at 512 px, 2 million page faults in 8 steps. Kept instead, the memory is reused: the
style-transfer step ran 6-10% faster here (bench/nst.py's step table measures both). The
price: the process keeps its peak memory until it exits.

Applied once, when the torch nodes load. Set NODEFLOW_MALLOC=default, or any MALLOC_*_
variable or glibc.malloc tunable of your own, to leave glibc as it is."""

from __future__ import annotations

import ctypes
import functools
import os
import sys

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -3, -4, -8

# glibc's defaults once its dynamic mmap threshold has risen to its cap (it does after the
# first large free), to put back: blocks over 32 MB mapped, freed heap over 64 MB trimmed.
DEFAULTS = {
    M_MMAP_THRESHOLD: 32 << 20,
    M_TRIM_THRESHOLD: 64 << 20,
    M_TOP_PAD: 128 * 1024,
    M_MMAP_MAX: 65536,
    M_ARENA_MAX: 0,
}

KEEP = {
    M_MMAP_MAX: 0,  # large blocks from the heap, not from fresh mappings
    M_TRIM_THRESHOLD: 2**31 - 1,  # and never trimmed back to the kernel
    M_TOP_PAD: 64 << 20,  # grow the heap 64 MB at a time
    # One arena: a worker thread's own arena lives in 64 MB heaps that can't hold a 512 px
    # float32 feature map, which would go back to fresh mappings.
    M_ARENA_MAX: 1,
}


@functools.cache
def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).mallopt  # absent on musl
    except (OSError, AttributeError):
        return None


def chosen_by_user() -> bool:
    return (
        os.environ.get("NODEFLOW_MALLOC") == "default"
        or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
        or any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ)
    )


def keep_freed_memory(keep: bool = True) -> bool:
    """Reuse freed memory (keep=True) or return to glibc's defaults; False where glibc's
    mallopt is not there."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    for param, value in (KEEP if keep else DEFAULTS).items():
        mallopt(param, value)
    return True


def apply_default() -> None:
    if not chosen_by_user():
        keep_freed_memory()
