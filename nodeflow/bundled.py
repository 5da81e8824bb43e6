"""The graphs that ship inside the package (nodeflow/graphs/*.json), found by name.

A checkout keeps a root `graphs` symlink to the same folder, so `graphs/edges.json` works there;
an installed wheel finds them here, and `nodeflow run edges` runs one by name from anywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

GRAPHS_DIR = Path(__file__).resolve().parent / "graphs"
SCHEMA_FILE = GRAPHS_DIR / "schema" / "graph.schema.json"
GRAPH_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # matched whole (fullmatch)


def bundled_graph_names() -> list[str]:
    """The bundled graphs' names (file stems), sorted."""
    return sorted(p.stem for p in GRAPHS_DIR.glob("*.json"))


def bundled_graphs() -> dict[str, dict[str, Any]]:
    """{name: graph} of the bundled graphs, by name; a file that doesn't read as a graph (a
    JSON object with a "nodes" object) is left out."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(GRAPHS_DIR.glob("*.json")):
        try:
            graph = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(graph, dict) and isinstance(graph.get("nodes"), dict):
            found[path.stem] = graph
    return found


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
