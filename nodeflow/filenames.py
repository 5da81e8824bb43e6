"""Checks on text that names a file, before the file system sees it: a NUL byte makes
Python raise ValueError, an over-long name OSError (ENAMETOOLONG), both deep inside
whatever touches the path first."""

from __future__ import annotations

# Linux's limits (ext4, xfs, btrfs, tmpfs): bytes per path component, and per path.
NAME_MAX = 255
PATH_MAX = 4096


def file_name_problem(text: str) -> str | None:
    """Why `text` can't name a file, or None."""
    if "\0" in text:
        return "it holds a NUL byte, which no file name can"
    size = len(text.encode("utf-8", "surrogateescape"))
    if size >= PATH_MAX:
        return f"it is {size} bytes long: paths are limited to {PATH_MAX - 1}"
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in text.split("/")), default=0)
    if longest > NAME_MAX:
        return f"a name in it is {longest} bytes long: file names are limited to {NAME_MAX} bytes"
    return None
