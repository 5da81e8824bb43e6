"""The malformed-graph corpus (tests/engine/malformed/*.json, and generated ones for what a file
can't hold comfortably) through the real CLI: exit status 2, every problem named by node
and input, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.extras import requires_extra
from support.paths import GRAPHS

CORPUS = Path(__file__).parent / "malformed"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def sections(stderr: str, paths: list[str]) -> dict[str, str]:
    """validate's stderr, split per file."""
    out, current = {}, None
    for line in stderr.splitlines():
        if line.rstrip(":") in paths and line.endswith(":"):
            current = line.rstrip(":")
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def named(text: str, node: str | None, input: str | None, code: str) -> bool:
    for line in text.splitlines():
        if f"[{code}]" not in line:
            continue
        if node is not None and f"node '{node[:60]}" not in line:
            continue
        if input is not None and f"input '{input}'" not in line:
            continue
        return True
    return False


def check(proc, expected: dict[str, list]) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    found = sections(proc.stderr, list(expected))
    for path, issues in expected.items():
        assert path in found, f"{path} not reported"
        for node, input, code in issues:
            assert named(found[path], node, input, code), f"{path}: no [{code}] for {node}.{input}:\n{found[path]}"


def test_the_corpus_matches_its_expectations():
    assert sorted(p.stem for p in CORPUS.glob("*.json") if p.name != "expected.json") == sorted(EXPECTED)


def test_every_malformed_graph_is_reported_with_each_problem(cli):
    paths = {str(CORPUS / f"{name}.json"): issues for name, issues in EXPECTED.items()}
    proc = cli("validate", *paths)
    check(proc, paths)
    assert "ok (" not in proc.stdout


@pytest.fixture
def generated(tmp_path) -> dict[str, list]:
    """Graphs too big or too odd to keep as files."""
    base = json.loads((GRAPHS / "edges.json").read_text())
    cases: dict[str, tuple[str | bytes, list]] = {}

    def with_input(node: str, name: str, raw: str) -> str:
        text = json.dumps(base)
        if node == "load":
            return text.replace('"max_size": 512', f'"max_size": {raw}', 1)
        return text.replace('"columns": 2', f'"columns": 2, "{name}": {raw}', 1)

    cases["huge_int"] = (with_input("load", "max_size", "1" * 5000), [("load", "max_size", "int_too_long")])
    cases["deep_100"] = (with_input("load", "max_size", "[" * 100 + "]" * 100), [("load", "max_size", "too_deep")])
    cases["deep_100000"] = (with_input("load", "max_size", "[" * 100_000 + "]" * 100_000), [(None, None, "too_deep")])
    cases["deep_object"] = (with_input("grid", "label1", '{"a":' * 5000 + "1" + "}" * 5000), [(None, None, "too_deep")])
    cases["not_utf8"] = (b'{"nodes": {"x": {"type": "\xff\xfe"}}}', [(None, None, "invalid_json")])
    cases["huge_string"] = (
        with_input("grid", "label9", json.dumps("x" * 5_000_000)),
        [("grid", "label9", "unknown_input")],
    )
    cases["huge_value_echo"] = (
        with_input("load", "max_size", json.dumps("9" * 5_000_000)),
        [("load", "max_size", "invalid_type")],
    )
    paths = {}
    for name, (text, issues) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        paths[str(path)] = issues
    return paths


def test_generated_graphs_are_reported_too(cli, generated):
    proc = cli("validate", *generated)
    check(proc, generated)
    assert len(proc.stderr) < 20_000  # a 5 MB value is echoed cut, not whole


def test_run_reports_every_stage_and_bad_overrides(cli, tmp_path):
    proc = cli(
        "run",
        str(CORPUS / "every_stage_at_once.json"),
        "--out",
        str(tmp_path / "out"),
        "--set",
        "load.max_size=Infinity",
        "--set",
        "save.quality=" + "9" * 5000,
        "--set",
        "nowhere",
        "--device",
        "cuda:abc",
    )
    check(proc, {})
    for code in (
        "invalid_structure",
        "invalid_node_id",
        "unknown_type",
        "missing_node",
        "not_finite",
        "int_too_long",
        "invalid_override",
        "invalid_device",
    ):
        assert f"[{code}]" in proc.stderr, code
    assert "--device: 'cuda:abc'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_foreign_png_cannot_write_outside_the_output_folder(cli, tmp_path, assets):
    """A graph embedded in a PNG from elsewhere is untrusted: its Save stays inside --out."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    escape = tmp_path / "escaped.png"
    graph = {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 16}},
            "a": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": str(escape)}},
            "b": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": "../../escaped.png"}},
        }
    }
    info = PngInfo()
    info.add_itxt("nodeflow:graph", json.dumps(graph), zip=True)
    foreign = tmp_path / "foreign.png"
    Image.new("RGB", (4, 4)).save(foreign, pnginfo=info)
    proc = cli("run", str(foreign), "--out", str(tmp_path / "out" / "deep"))
    check(proc, {})
    assert named(proc.stderr, "a", "filename", "invalid_input") and named(proc.stderr, "b", "filename", "invalid_input")
    assert not escape.exists() and not (tmp_path / "escaped.png").exists()


# Every bundled graph: the extras of all their node families.
@requires_extra("nst", "nst-tf", "hub", "sd")
def test_validate_of_the_bundled_graphs_loads_no_framework(cli):
    """Checking devices needs no torch or TensorFlow unless a GPU is asked for by name."""
    code = (
        "import sys; from nodeflow.cli.command import main; rc = main(['validate', *sys.argv[1:]]); "
        "heavy = sorted(m for m in ('torch', 'tensorflow', 'diffusers', 'onnxruntime') if m in sys.modules); "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, sorted(GRAPHS.glob("*.json")))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
