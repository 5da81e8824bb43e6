"""The graphs that ship inside the package (nodeflow/graphs/*.json), found by name.

A checkout keeps a root `graphs` symlink to the same folder, so `graphs/edges.json` works there;
an installed wheel finds them here, and `nodeflow run edges` runs one by name from anywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

GRAPHS_DIR = Path(__file__).resolve().parent / "graphs"
SCHEMA_FILE = GRAPHS_DIR / "schema" / "graph.schema.json"
GRAPH_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # matched whole (fullmatch)


def bundled_graph_names() -> list[str]:
    """The bundled graphs' names (file stems), sorted."""
    return sorted(p.stem for p in GRAPHS_DIR.glob("*.json"))


def bundled_graph_path(name: str) -> Path | None:
    """The bundled graph called `name` (or `name.json`), or None."""
    stem = name[:-5] if name.endswith(".json") else name
    if not GRAPH_NAME.fullmatch(stem):
        return None
    path = GRAPHS_DIR / f"{stem}.json"
    return path if path.is_file() else None


def is_bare_name(arg: str) -> bool:
    """A graph argument with no folder in it ("nst_starry", "edges.json")."""
    return "/" not in arg and "\\" not in arg and bool(GRAPH_NAME.fullmatch(arg.removesuffix(".json")))
