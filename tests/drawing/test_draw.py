"""`nodeflow show`: a picture of every bundled graph, coloured by a run log when given one."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from PIL import Image
from support.paths import GRAPHS

from nodeflow.cli.command import main
from nodeflow.drawing.draw import STATE_FILL, layout
from nodeflow.graph import as_link, parse_graph, read_graph_file

SVG = "{http://www.w3.org/2000/svg}"


def links_of(graph) -> int:
    return sum(
        1
        for spec in graph.nodes.values()
        for v in spec.inputs.values()
        if as_link(v) is not None and not isinstance(as_link(v), str)
    )


def header_fill(svg_root, node_id: str) -> str:
    """The fill of the header rect drawn just before the node id's text."""
    items = list(svg_root)
    for i, el in enumerate(items):
        if el.tag == SVG + "text" and el.text == node_id and el.get("font-weight") == "bold":
            return items[i - 1].get("fill")
    raise AssertionError(f"no box for {node_id}")


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.json")), ids=lambda p: p.stem)
def test_every_bundled_graph_draws_as_svg_and_png(path, tmp_path):
    graph = read_graph_file(path)
    assert main(["show", str(path), "-o", str(tmp_path / "g.svg")]) == 0
    root = ET.parse(tmp_path / "g.svg").getroot()
    texts = [el.text for el in root.iter(SVG + "text")]
    for nid, spec in graph.nodes.items():
        assert nid in texts and spec.type in texts
    assert len(list(root.iter(SVG + "path"))) == links_of(graph)  # one wire per link
    assert main(["show", str(path), "-o", str(tmp_path / "g.png")]) == 0
    with Image.open(tmp_path / "g.png") as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 100


def test_boxes_run_left_to_right_and_wires_join_named_ports():
    graph = parse_graph(
        {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 64}},
                "sobel": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}}},
                "save": {"type": "Save", "inputs": {"image": {"from": "sobel.magnitude"}, "filename": "e.png"}},
            }
        }
    )
    shapes = layout(graph)
    texts = {item[3]: item for item in shapes.items if item[0] == "text"}
    assert texts["load"][1] < texts["sobel"][1] < texts["save"][1]
    assert {"path = astronaut.png", "max_size = 64", "filename = e.png", "magnitude", "image"} <= set(texts)
    wires = [item for item in shapes.items if item[0] == "wire"]
    assert len(wires) == 2
    # Each wire starts at its output's label row and ends at its input's label row.
    magnitude = texts["magnitude"]
    assert any(abs(w[1][1] - magnitude[2]) < 1e-6 for w in wires)


def test_run_log_colours_ran_cached_and_not_needed_nodes(tmp_path, assets):
    edges = str(GRAPHS / "edges.json")
    log = tmp_path / "run.json"
    assert main(["run", edges, "--out", str(tmp_path / "out"), "-q", "--run-log", str(log)]) == 0
    assert json.loads(log.read_text())["nodes"]["save"]["state"] == "ran"
    assert (
        main(
            [
                "run",
                edges,
                "--out",
                str(tmp_path / "out"),
                "-q",
                "--run-log",
                str(log),
                "--set",
                "save.filename=other.png",
            ]
        )
        == 0
    )
    assert main(["show", edges, "-o", str(tmp_path / "g.svg"), "--run-log", str(log)]) == 0
    root = ET.parse(tmp_path / "g.svg").getroot()
    assert header_fill(root, "save") == STATE_FILL["ran"]
    assert header_fill(root, "grid") == STATE_FILL["cached"]
    assert header_fill(root, "load") == STATE_FILL["not run"]  # upstream of a cached node
    assert "from the cache" in [el.text for el in root.iter(SVG + "text")]


def test_a_job_answer_colours_a_failed_node(tmp_path):
    job = {
        "id": "abc",
        "status": "failed",
        "nodes": {
            "load": {"state": "ran", "seconds": 0.1},
            "sobel": {"state": "failed", "error": "boom"},
            "save": {"state": "cancelled"},
        },
    }
    answer = tmp_path / "job.json"
    answer.write_text(json.dumps(job))
    edges = str(GRAPHS / "edges.json")
    assert main(["show", edges, "-o", str(tmp_path / "g.png"), "--run-log", str(answer)]) == 0
    assert main(["show", edges, "-o", str(tmp_path / "g.svg"), "--run-log", str(answer)]) == 0
    root = ET.parse(tmp_path / "g.svg").getroot()
    assert header_fill(root, "sobel") == STATE_FILL["failed"]
    assert header_fill(root, "load") == STATE_FILL["ran"]
    assert header_fill(root, "high_pass") == STATE_FILL["not run"]
    assert "boom" in [el.text for el in root.iter(SVG + "text")]
    # The failed header's colour is in the PNG too.
    with Image.open(tmp_path / "g.png") as im:
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert tuple(int(STATE_FILL["failed"][i : i + 2], 16) for i in (1, 3, 5)) in colours


def test_bad_requests_exit_2_and_nothing_is_overwritten(tmp_path, capsys):
    edges = str(GRAPHS / "edges.json")
    assert main(["show", edges, "-o", str(tmp_path / "g.jpg")]) == 2
    taken = tmp_path / "taken.svg"
    taken.write_text("mine")
    assert main(["show", edges, "-o", str(taken)]) == 2
    assert taken.read_text() == "mine"
    assert main(["show", edges, "-o", str(taken), "--force"]) == 0 and taken.read_text() != "mine"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": ["load"]}))
    assert main(["show", edges, "-o", str(tmp_path / "x.svg"), "--run-log", str(bad)]) == 2
    assert main(["show", edges, "-o", str(tmp_path / "y.svg"), "--run-log", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert ".svg or .png" in err and "--force" in err and "per-node states" in err and "cannot read" in err


def test_run_log_can_be_a_job_url(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            super().do_GET()

        def log_message(self, *args):
            pass

    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "abc").write_text(json.dumps({"id": "abc", "nodes": {"save": {"state": "failed"}}}))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("NODEFLOW_TOKEN", "s3cret")
        url = f"http://127.0.0.1:{server.server_address[1]}/jobs/abc"
        assert main(["show", str(GRAPHS / "edges.json"), "-o", str(tmp_path / "g.svg"), "--run-log", url]) == 0
    finally:
        server.shutdown()
    assert seen == ["Bearer s3cret"]
    assert header_fill(ET.parse(tmp_path / "g.svg").getroot(), "save") == STATE_FILL["failed"]
