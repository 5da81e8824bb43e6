"""The `nodeflow` command, end to end, in subprocesses."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
from PIL import Image
from support.extras import requires_extra
from support.paths import ASSETS, GRAPHS, ROOT


def node_lines(stderr: str) -> dict[str, str]:
    """{node id: status text} from the run log."""
    out = {}
    for line in stderr.splitlines():
        parts = line.split()
        if line.startswith("  ") and len(parts) >= 3 and parts[2] in ("cached", "ran", "FAILED:"):
            out[parts[0]] = " ".join(parts[2:])
    return out


def test_edges_graph_end_to_end_then_fully_cached(cli, tmp_path):
    out = tmp_path / "outputs"
    first = cli("run", "graphs/edges.json", "--out", str(out))
    assert first.returncode == 0, first.stderr
    with Image.open(out / "edges.png") as im:
        assert im.size[0] > 500 and im.size[1] > 500 and "nodeflow:graph" in im.info
    second = cli("run", "graphs/edges.json", "--out", str(out))
    assert second.returncode == 0, second.stderr
    lines = node_lines(second.stderr)
    assert len(lines) == 6 and all(s.startswith("cached") for s in lines.values()), second.stderr
    assert "0 ran, 6 cached" in second.stderr
    assert sorted(p.name for p in out.iterdir()) == ["edges.png"]


def test_set_reruns_only_the_changed_node_and_what_follows(cli, tmp_path):
    out = tmp_path / "outputs"
    assert cli("run", "graphs/edges.json", "--out", str(out)).returncode == 0
    changed = cli("run", "graphs/edges.json", "--out", str(out), "--set", "sobel.channels=per_channel")
    assert changed.returncode == 0, changed.stderr
    lines = node_lines(changed.stderr)
    ran = {n for n, s in lines.items() if s.startswith("ran")}
    assert ran == {"sobel", "grid", "save"}, changed.stderr
    assert (out / "edges_0001.png").exists()  # the earlier grid is kept


def test_deleted_output_is_written_again(cli, tmp_path):
    out = tmp_path / "outputs"
    assert cli("run", "graphs/edges.json", "--out", str(out)).returncode == 0
    (out / "edges.png").unlink()
    again = cli("run", "graphs/edges.json", "--out", str(out))
    assert again.returncode == 0 and (out / "edges.png").exists()
    assert node_lines(again.stderr)["save"].startswith("ran")
    assert node_lines(again.stderr)["grid"] == "cached (disk)"


def test_no_cache_runs_everything(cli, tmp_path):
    out = tmp_path / "o"
    cli("run", "graphs/edges.json", "--out", str(out))
    r = cli("run", "graphs/edges.json", "--out", str(out), "--no-cache")
    assert r.returncode == 0 and "5 ran, 1 cached" in r.stderr  # Save finds its file up to date


def test_png_output_reruns_its_graph(cli, tmp_path):
    out = tmp_path / "o"
    assert cli("run", "graphs/edges.json", "--out", str(out)).returncode == 0
    again = cli("run", str(out / "edges.png"), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "0 ran, 6 cached" in again.stderr


BAD_GRAPHS = {
    "unknown_type.json": ({"nodes": {"x": {"type": "Nope"}}}, ["node 'x'", "Nope"]),
    "bad_choice.json": (
        {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png"}},
                "sobel": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}, "channels": "rgb"}},
                "save": {"type": "Save", "inputs": {"image": {"from": "sobel.magnitude"}}},
            }
        },
        ["node 'sobel', input 'channels'"],
    ),
    "range.json": (
        {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 2}},
                "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "quality": "high"}},
            }
        },
        ["node 'load', input 'max_size'", "node 'save', input 'quality'"],
    ),
    "links.json": (
        {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png"}},
                "save": {
                    "type": "Save",
                    "inputs": {"image": {"from": "lod.image"}, "filename": {"from": "load.image"}},
                },
            }
        },
        ["node 'save', input 'image'", "node 'save', input 'filename'"],
    ),
    "missing_file.json": (
        {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "nowhere.png"}},
                "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
            }
        },
        ["node 'load', input 'path'", "nowhere.png"],
    ),
    "no_output.json": (
        {"nodes": {"load": {"type": "LoadImage", "inputs": {"path": "astronaut.png"}}}},
        ["no output node"],
    ),
    "not_an_object.json": ([1, 2], ["nodes"]),
}


@pytest.mark.parametrize("name", sorted(BAD_GRAPHS))
def test_bad_graphs_exit_2_naming_node_and_input_without_traceback(cli, tmp_path, name):
    graph, expected = BAD_GRAPHS[name]
    path = tmp_path / name
    path.write_text(json.dumps(graph))
    for command in (["run", str(path)], ["validate", str(path)]):
        r = cli(*command)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr + r.stdout
        for text in expected:
            assert text in r.stderr


def test_file_level_errors_exit_2(cli, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "nodes": {\n    "a": {"type": "Sobel",}\n  }\n}\n')
    r = cli("run", str(broken))
    assert r.returncode == 2 and "line 3, column" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", str(tmp_path / "absent.json"))
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", str(tmp_path))  # a directory
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = cli("run", "graphs/edges.json", "--set", "nosuchnode.x=1")
    assert r.returncode == 2 and "nosuchnode" in r.stderr
    r = cli("run", "graphs/edges.json", "--set", "sobel.colour=1")
    assert r.returncode == 2 and "node 'sobel', input 'colour'" in r.stderr


def test_runtime_failure_exits_1_naming_the_node(cli, tmp_path, assets):
    # A PNG cut short: its header passes validation, its pixels fail at run time. (A file that
    # is no image at all is caught by validation: tests/engine/test_malformed_inputs.py.)
    whole = (assets / "astronaut.png").read_bytes()
    (tmp_path / "astronaut.png").write_bytes(whole[: len(whole) // 3])
    r = cli("run", "graphs/edges.json", "--out", str(tmp_path / "o"), "--input-dir", str(tmp_path))
    assert r.returncode == 1, r.stderr
    assert "node 'load' (LoadImage), input 'path'" in r.stderr and "Traceback" not in r.stderr


def test_bad_save_name_is_caught_before_anything_runs(cli, tmp_path):
    r = cli("run", "graphs/edges.json", "--out", str(tmp_path), "--set", "save.filename=grid.gif")
    assert r.returncode == 2, r.stderr
    assert "node 'save', input 'filename'" in r.stderr and "Traceback" not in r.stderr
    assert "ran" not in r.stderr


def test_help_and_image_graphs_import_no_framework(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from nodeflow.cli.command import main
        rc = main(["run", {str(GRAPHS / "edges.json")!r}, "--out", {str(tmp_path)!r}, "-q"])
        heavy = sorted(m for m in ("torch", "tensorflow", "diffusers", "onnxruntime", "matplotlib") if m in sys.modules)
        print(rc, heavy)
    """)
    import subprocess

    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip() == "0 []", r.stdout + r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from nodeflow.cli.command import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('pydantic', 'numpy', 'torch') if m in sys.modules))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr


def test_nodes_listing(cli):
    r = cli("nodes", "--json")
    assert r.returncode == 0
    nodes = {n["type"]: n for n in json.loads(r.stdout)}
    assert {"LoadImage", "Save", "Sobel", "HighPass", "Grid"} <= set(nodes)
    assert nodes["Sobel"]["inputs"]["channels"]["choices"] == ["gray", "per_channel"]
    assert nodes["LoadImage"]["inputs"]["max_size"]["minimum"] == 8
    text = cli("nodes")
    assert text.returncode == 0 and "HighPass" in text.stdout


def test_schema_is_current_and_bundled_graphs_validate(cli):
    import jsonschema

    r = cli("schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    committed = json.loads((GRAPHS / "schema" / "graph.schema.json").read_text())
    assert schema == committed, (
        "nodeflow/graphs/schema/graph.schema.json is stale: "
        "run `nodeflow schema > nodeflow/graphs/schema/graph.schema.json`"
    )
    for path in sorted(GRAPHS.glob("*.json")):
        graph = json.loads(path.read_text())
        assert graph.get("$schema") == "schema/graph.schema.json", path.name
        jsonschema.validate(graph, schema)
    bad = {"nodes": {"s": {"type": "Sobel", "inputs": {"channels": "rgb"}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# Every bundled graph: the extras of all their node families.
@requires_extra("nst", "nst-tf", "hub", "sd")
def test_bundled_graphs_validate(cli):
    # Exactly what a user types: the glob holds the bundled graphs and nothing else.
    r = cli("validate", *sorted(str(p) for p in GRAPHS.glob("*.json")))
    assert r.returncode == 0, r.stderr


def test_entry_point_plugins_are_discovered(cli, tmp_path):
    pkg = tmp_path / "nf_plugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent('''
        from typing import Any
        from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
        from nodeflow.types import IMAGE

        class Invert(Node):
            """1 - image."""
            class Inputs(NodeInputs):
                image: Any = Input(port=IMAGE)
            class Outputs(NodeOutputs):
                image: Any = Output(IMAGE)
            def run(self, image):
                return {"image": 1.0 - image}
    ''')
    )
    dist = tmp_path / "nf_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nf-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nodeflow.nodes]\ndemo = nf_plugin_demo\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    r = cli("nodes", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert "Invert" in {n["type"] for n in json.loads(r.stdout)}
    graph = tmp_path / "g.json"
    graph.write_text(
        json.dumps(
            {
                "nodes": {
                    "load": {"type": "LoadImage", "inputs": {"path": "coffee.png", "max_size": 32}},
                    "inv": {"type": "Invert", "inputs": {"image": {"from": "load.image"}}},
                    "save": {"type": "Save", "inputs": {"image": {"from": "inv.image"}, "filename": "inv.png"}},
                }
            }
        )
    )
    r = cli("run", str(graph), "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "o" / "inv.png") as im, Image.open(ASSETS / "coffee.png") as orig:
        assert abs(int(im.getpixel((0, 0))[0]) + int(orig.resize((32, 21)).getpixel((0, 0))[0]) - 255) < 40


def test_cache_command_shows_and_clears(cli, tmp_path, isolated_env):
    assert cli("run", "graphs/edges.json", "--out", str(tmp_path)).returncode == 0
    shown = cli("cache")
    assert shown.returncode == 0 and "5 entries" in shown.stdout
    assert cli("cache", "--clear").returncode == 0
    assert "0 entries" in cli("cache").stdout
