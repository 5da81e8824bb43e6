"""Malformed graphs found at validation, not at run time (issue 30, item 11): a text file
named .png, JSON nested too deep (one message, with where), over-long node ids."""

from __future__ import annotations

import json

import pytest

from nodeflow.errors import GraphInvalid
from nodeflow.graph import MAX_ID, parse_graph, read_graph_file
from nodeflow.plan import build_plan


def _load_save(path: str) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": path}},
            "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
        }
    }


def test_a_text_file_named_png_fails_validation(tmp_path, monkeypatch):
    (tmp_path / "fake.png").write_text("this is text, not an image")
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    monkeypatch.setenv("NODEFLOW_INPUT_DIR", str(tmp_path))
    for name in ("fake.png", "cut.png"):
        with pytest.raises(GraphInvalid) as info:
            build_plan(parse_graph(_load_save(name)))
        [issue] = info.value.issues
        assert (issue.node, issue.input, issue.code) == ("load", "path", "invalid_input")
        assert "is not a readable image" in issue.message


def test_a_real_image_still_validates(assets, monkeypatch):
    monkeypatch.setenv("NODEFLOW_INPUT_DIR", str(assets))
    assert build_plan(parse_graph(_load_save("astronaut.png"))).targets == ["save"]


def test_too_deep_json_gives_one_message_with_where(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"nodes": {"a": {"type": "X", "inputs": {"v": ' + "[" * 5000 + "]" * 5000 + "}}}}")
    with pytest.raises(GraphInvalid) as info:
        read_graph_file(path)
    [issue] = info.value.issues
    assert issue.code == "too_deep"
    assert "Refused" not in issue.message and "must be a JSON object" not in issue.message
    assert "line 1, column" in issue.message


def test_cli_reports_deep_json_once(cli, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nesting is deeper than" in result.stdout + result.stderr
    assert "Refused" not in result.stdout + result.stderr


def test_node_ids_are_capped(tmp_path):
    long_id = "n" * 100_000
    graph = {"nodes": {long_id: {"type": "Sobel", "inputs": {}}}}
    with pytest.raises(GraphInvalid) as info:
        parse_graph(graph)
    [issue] = info.value.issues
    assert issue.code == "invalid_node_id"
    assert f"at most {MAX_ID} characters" in issue.message
    assert len(json.dumps(issue.to_dict())) < 400
    parse_graph({"nodes": {"n" * MAX_ID: {"type": "Sobel", "inputs": {}}}})


@pytest.mark.parametrize("bad", ["load\n", "lo ad", "1load"])
def test_node_ids_are_matched_whole(bad):
    with pytest.raises(GraphInvalid) as info:
        parse_graph({"nodes": {bad: {"type": "Sobel", "inputs": {}}}})
    assert info.value.issues[0].code == "invalid_node_id"


def test_links_are_matched_whole():
    graph = {"nodes": {"a": {"type": "Sobel", "inputs": {"image": {"from": "x.image\n"}}}}}
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph(graph))
    assert any(i.code == "invalid_link" for i in info.value.issues)
