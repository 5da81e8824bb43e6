"""What clients see of errors: no absolute server paths, no Python object reprs.

Messages are written for the CLI's user, who may see their own paths. The server runs
every message it sends (422 issues, job errors, event stream) through a Scrubber:
paths in the data folder become relative to it (inputs/x.png), any other absolute path
keeps only its last name, and `<pkg.Thing object at 0x7f...>` becomes `<Thing>`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_SEGMENT = r"[^\s/'\"():,;<>\[\]{}|`]+"
# Two or more segments after a slash not preceded by a name or URL character (so the path
# part of https://host/a/b is left alone).
_ABSOLUTE = re.compile(rf"(?<![\w.:/~%-])(?:~|/{_SEGMENT})(?:/{_SEGMENT})*/({_SEGMENT})")
_OBJECT = re.compile(r"<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")
MESSAGE_KEYS = frozenset({"message", "error"})


class Scrubber:
    def __init__(self, data_dir: Path):
        roots = {str(Path(data_dir)), str(Path(data_dir).resolve())}
        self.roots = sorted((r.rstrip("/") + "/" for r in roots), key=len, reverse=True)

    def text(self, text: str) -> str:
        for root in self.roots:
            text = text.replace(root, "")
        text = _ABSOLUTE.sub(lambda m: m.group(1), text)
        text = _OBJECT.sub(r"<\1>", text)
        return _ADDRESS.sub(">", text)

    def deep(self, value: Any, key: str | None = None) -> Any:
        """`value` with the text of every message in it scrubbed: strings under the keys
        "message" and "error", at any depth (API paths such as output URLs stay as they are)."""
        if isinstance(value, str):
            return self.text(value) if key in MESSAGE_KEYS else value
        if isinstance(value, dict):
            return {k: self.deep(v, k if k in MESSAGE_KEYS else key) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v, key) for v in value]
        return value
