"""The graphs and example images that ship in the package: a bundled graph runs by name from any
folder, offline, with an empty input directory; an unknown name lists the bundled ones."""

from __future__ import annotations

import hashlib

from support.paths import ASSETS, GRAPHS, ROOT

from nodeflow.bundled import bundled_graph_names, bundled_graph_path
from nodes.image.load_image import EXAMPLES, bundled_example


def test_every_bundled_graph_has_a_name():
    assert bundled_graph_names() == sorted(p.stem for p in GRAPHS.glob("*.json"))
    assert bundled_graph_path("edges") == bundled_graph_path("edges.json") == GRAPHS / "edges.json"
    assert bundled_graph_path("../pyproject") is None and bundled_graph_path("nope") is None


def test_a_bundled_graph_runs_by_name_elsewhere_offline(cli, tmp_path):
    empty = tmp_path / "inputs"
    empty.mkdir()
    env = {"PYTHONPATH": str(ROOT), "NODEFLOW_OFFLINE": "1", "NODEFLOW_INPUT_DIR": str(empty)}
    r = cli("run", "edges", "--out", str(tmp_path / "out"), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "edges.png").is_file()


def test_an_unknown_name_lists_the_bundled_graphs(cli, tmp_path):
    r = cli("run", "nst_stary", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no bundled graph of that name" in r.stderr and "nst_starry" in r.stderr and "edges" in r.stderr


def test_a_file_of_that_name_comes_first(cli, tmp_path):
    (tmp_path / "edges").write_text("{not json")
    r = cli("validate", "edges", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "invalid JSON" in r.stderr


def test_the_bundled_examples_are_the_graphs_files():
    for name in ("astronaut.png", "starry_night.jpg"):
        sha = hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()
        assert hashlib.sha256((EXAMPLES / name).read_bytes()).hexdigest() == sha
        assert bundled_example(name, sha) == EXAMPLES / name
        assert bundled_example(name, None) == EXAMPLES / name
        assert bundled_example(name, "0" * 64) is None  # another file of that name: downloaded instead
    assert bundled_example("../load_image.py", None) is None and bundled_example("SOURCES.md", None) is None
