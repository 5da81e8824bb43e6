"""The node library's layout: one subpackage per family, and an engine that imports no node."""

import ast
from pathlib import Path

from support.paths import ROOT

FAMILIES = {
    "image": {"LoadImage", "Save", "Sobel", "HighPass", "Grid", "PlotLoss", "MatchColors"},
    "nst": {"VGGFeatures", "StyleLoss", "ContentLoss", "TVLoss", "AdamOptimize", "LBFGSOptimize"},
    "hub": {"HubStylize", "StyleVector", "MultiStyle"},
    "sd": {"SDImg2Img"},
    "comfy_core": {
        "ComfyLoadImage",
        "SaveImage",
        "PreviewImage",
        "SaveImageWebsocket",
        "ImageScale",
        "ImageScaleBy",
        "ImageInvert",
        "ImageBlend",
    },
}


def test_each_builtin_node_lives_in_its_family_subpackage():
    from nodeflow.registry import load_nodes

    found: dict[str, set] = {}
    for name, cls in load_nodes().items():
        parts = cls.__module__.split(".")
        if parts[0] == "nodes":
            assert len(parts) == 3 and not parts[2].startswith("_"), cls.__module__
            found.setdefault(parts[1], set()).add(name)
    assert found == FAMILIES


def _imports(path: Path) -> set[str]:
    """Modules a file imports, relative imports resolved against the nodeflow package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names.add(("nodeflow." + base) if node.level else base)
    return names


def test_the_engine_imports_no_node_and_registry_imports_no_engine_module():
    for path in (ROOT / "nodeflow").rglob("*.py"):
        bad = {m for m in _imports(path) if m == "nodes" or m.startswith("nodes.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    # node.py imports registry; registry must not import node back (no cycle).
    registry = _imports(ROOT / "nodeflow" / "registry.py")
    assert not any(m.startswith("nodeflow") for m in registry), registry


def test_the_graphs_folder_holds_only_graphs():
    import json

    for path in (ROOT / "nodeflow" / "graphs").glob("*.json"):
        assert "nodes" in json.loads(path.read_text()), path.name
