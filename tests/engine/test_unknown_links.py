"""Every node's own checks (check, fingerprint, check_framework) cope with any graph the
validator is given: each input of each node linked from a node of unknown type is reported
as issues, never as an exception (issue 30, item 2)."""

from __future__ import annotations

import json

import pytest
from support.inprocess import app_client

from nodeflow.errors import GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan
from nodeflow.registry import load_nodes

CRASHER = {
    "nodes": {
        "x": {"type": "Nope"},
        "load": {"type": "LoadImage", "inputs": {"path": {"from": "x.image"}}},
        "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
    }
}


def _cases() -> list[tuple[str, str]]:
    """(node type, input) for every input of every node that takes a literal."""
    return [(t, name) for t, cls in sorted(load_nodes().items()) for name, s in cls.input_specs.items() if s.adapter]


def _graph(node_type: str, name: str) -> dict:
    cls = load_nodes()[node_type]
    wanted = {n for n, s in cls.input_specs.items() if s.required} | {name}
    return {
        "nodes": {
            "x": {"type": "Nope"},
            "n": {"type": node_type, "inputs": {n: {"from": "x.out"} for n in sorted(wanted)}},
        }
    }


def test_every_literal_input_linked_from_an_unknown_node_is_an_issue(tmp_path):
    cases = _cases()
    assert len(cases) > 30 and ("VGGFeatures", "framework") in cases and ("LoadImage", "path") in cases
    for node_type, name in cases:
        graph = parse_graph(_graph(node_type, name))
        with pytest.raises(GraphInvalid) as info:
            build_plan(graph)
        codes = {i.code for i in info.value.issues}
        assert "unknown_type" in codes, (node_type, name, codes)


def test_every_node_with_all_literal_inputs_linked_from_an_unknown_node():
    for node_type, cls in sorted(load_nodes().items()):
        graph = {"nodes": {"x": {"type": "Nope"}, "n": {"type": node_type, "inputs": {}}}}
        graph["nodes"]["n"]["inputs"] = {n: {"from": "x.out"} for n in cls.input_specs}
        with pytest.raises(GraphInvalid) as info:
            build_plan(parse_graph(graph))
        assert any(i.code == "unknown_type" and i.node == "x" for i in info.value.issues), node_type


def test_cli_validate_reports_the_link_without_a_traceback(cli, tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(CRASHER))
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert "unknown node type 'Nope'" in text
    assert "give it as a value, not a link" in text


@pytest.mark.parametrize(
    "node_type,name", [("LoadImage", "path"), ("VGGFeatures", "model"), ("VGGFeatures", "framework")]
)
def test_http_routes_answer_4xx(tmp_path, node_type, name):
    graph = _graph(node_type, name)
    prompt = {
        "1": {"class_type": "Nope", "inputs": {}},
        "2": {"class_type": node_type, "inputs": {n: ["1", 0] for n in graph["nodes"]["n"]["inputs"]}},
    }
    with app_client(tmp_path) as client:
        r = client.post("/jobs", json={"graph": graph})
        assert r.status_code == 422, r.text
        assert any(i["code"] == "unknown_type" for i in r.json()["issues"])
        r = client.post("/prompt", content=json.dumps({"prompt": prompt}), headers={"content-type": "text/plain"})
        assert 400 <= r.status_code < 500, r.text
        assert "Nope" in r.text
