"""Validation: every problem is reported at once, each naming its node and input."""

from __future__ import annotations

import pytest
import support.engine_nodes  # noqa: F401  (registers the test nodes)

from nodeflow.errors import GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan


def issues_of(nodes: dict, **graph) -> list:
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph({"nodes": nodes, **graph}))
    return info.value.issues


def find(issues, code):
    hits = [i for i in issues if i.code == code]
    assert hits, f"no {code} among {[str(i) for i in issues]}"
    return hits[0]


def test_valid_graph_plans_in_topological_order():
    plan = build_plan(
        parse_graph(
            {
                "nodes": {
                    "sink": {"type": "TSink", "inputs": {"value": {"from": "add.value"}}},
                    "add": {"type": "TAdd", "inputs": {"a": {"from": "one.value"}, "b": 2}},
                    "one": {"type": "TNumber"},
                    "unused": {"type": "TNumber", "inputs": {"value": 5}},
                }
            }
        )
    )
    assert plan.order == ["one", "add", "sink"]  # only ancestors of the output node
    assert plan.nodes["add"].literals == {"b": 2.0}


def test_every_error_reported_at_once_with_node_and_input():
    issues = issues_of(
        {
            "bad_type": {"type": "NoSuchNode"},
            "n": {"type": "TNumber", "inputs": {"value": 5000, "label": "c", "colour": 1}},
            "wrong": {"type": "TNumber", "inputs": {"value": "five"}},
            "add": {"type": "TAdd", "inputs": {"b": {"from": "ghost.value"}}},
            "add2": {"type": "TAdd", "inputs": {"a": {"from": "n.nothing"}}},
            "mismatch": {"type": "TAdd", "inputs": {"a": {"from": "cnt.n"}}},
            "cnt": {"type": "TCount"},
            "sink": {"type": "TSink", "inputs": {"value": {"from": "n.value"}}},
        }
    )
    assert str(find(issues, "unknown_type")).startswith("node 'bad_type'")
    big = find(issues, "value_too_large")
    assert (big.node, big.input) == ("n", "value")
    choice = find(issues, "invalid_choice")
    assert (choice.node, choice.input) == ("n", "label") and "a, b" in choice.message
    unknown = find(issues, "unknown_input")
    assert (unknown.node, unknown.input) == ("n", "colour")
    wrong = find(issues, "invalid_type")
    assert (wrong.node, wrong.input) == ("wrong", "value")
    missing = find(issues, "required_input_missing")
    assert (missing.node, missing.input) == ("add", "a")
    ghost = find(issues, "missing_node")
    assert (ghost.node, ghost.input) == ("add", "b") and "ghost" in ghost.message
    out = find(issues, "missing_output")
    assert (out.node, out.input) == ("add2", "a") and "nothing" in out.message
    mm = find(issues, "type_mismatch")
    assert (mm.node, mm.input) == ("mismatch", "a") and "INT" in mm.message and "FLOAT" in mm.message


def test_literal_types_are_strict():
    issues = issues_of(
        {"c": {"type": "TCount", "inputs": {"n": 2.5}}, "s": {"type": "TSink", "inputs": {"value": True}}}
    )
    assert {(i.node, i.input) for i in issues} == {("c", "n"), ("s", "value")}


def test_cycle_report_names_each_link():
    issues = issues_of(
        {
            "a": {"type": "TAdd", "inputs": {"a": {"from": "c.value"}, "b": 1}},
            "b": {"type": "TAdd", "inputs": {"a": {"from": "a.value"}}},
            "c": {"type": "TAdd", "inputs": {"a": {"from": "b.value"}, "b": {"from": "b.value"}}},
            "sink": {"type": "TSink", "inputs": {"value": {"from": "a.value"}}},
        }
    )
    cycles = [i for i in issues if i.code == "cycle"]
    assert len(cycles) == 1
    cyc = cycles[0]
    assert (cyc.node, cyc.input) == ("b", "a")
    assert cyc.message == (
        "the graph has a cycle: b.a takes a.value; c.a takes b.value; c.b takes b.value; a.a takes c.value"
    )


def test_self_loop_names_its_input_and_separate_cycles_are_reported_apart():
    issues = issues_of(
        {
            "loop": {"type": "TAdd", "inputs": {"a": 1, "b": {"from": "loop.value"}}},
            "x": {"type": "TAdd", "inputs": {"a": {"from": "y.value"}}},
            "y": {"type": "TAdd", "inputs": {"a": {"from": "x.value"}}},
            "sink": {"type": "TSink", "inputs": {"value": {"from": "x.value"}}},
        }
    )
    cycles = [i for i in issues if i.code == "cycle"]
    assert [(i.node, i.input) for i in cycles] == [("loop", "b"), ("y", "a")]
    assert cycles[0].message == "the graph has a cycle: loop.b takes loop.value"
    assert cycles[1].message == "the graph has a cycle: y.a takes x.value; x.a takes y.value"


def test_plan_keeps_only_ancestors_of_the_targets_in_file_order_where_free():
    plan = build_plan(
        parse_graph(
            {
                "nodes": {
                    "p": {"type": "TNumber"},
                    "q": {"type": "TNumber"},
                    "add": {"type": "TAdd", "inputs": {"a": {"from": "q.value"}, "b": {"from": "p.value"}}},
                    "other": {"type": "TAdd", "inputs": {"a": {"from": "p.value"}}},
                    "sink": {"type": "TSink", "inputs": {"value": {"from": "add.value"}}},
                }
            }
        ),
        only=["add"],
    )
    assert plan.order == ["p", "q", "add"]


def test_no_output_node():
    find(issues_of({"n": {"type": "TNumber"}}), "no_output")


def test_malformed_link_and_link_only_literal():
    issues = issues_of(
        {
            "s": {"type": "TSink", "inputs": {"value": {"from": "not a link"}}},
            "save": {"type": "Save", "inputs": {"image": 3}},
        }
    )
    assert find(issues, "invalid_link").node == "s"
    lit = find(issues, "link_required")
    assert (lit.node, lit.input) == ("save", "image")


def test_structure_errors_name_the_node():
    with pytest.raises(GraphInvalid) as info:
        parse_graph({"nodes": {"x": {"type": "TNumber", "inptus": {}}}})
    assert info.value.issues[0].node == "x"
    with pytest.raises(GraphInvalid):
        parse_graph({"nodes": {"bad id!": {"type": "TNumber"}}})


def test_only_unknown_node():
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph({"nodes": {"n": {"type": "TNumber"}}}), only=["nope"])
    assert find(info.value.issues, "unknown_node").node == "nope"


def test_missing_input_file_is_a_validation_error(tmp_path):
    from nodeflow.context import Settings

    with pytest.raises(GraphInvalid) as info:
        build_plan(
            parse_graph(
                {
                    "nodes": {
                        "load": {"type": "LoadImage", "inputs": {"path": "missing.png"}},
                        "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
                    }
                }
            ),
            Settings(input_dir=tmp_path, output_dir=tmp_path),
        )
    issue = find(info.value.issues, "invalid_input")
    assert (issue.node, issue.input) == ("load", "path") and "missing.png" in issue.message


def test_checks_skip_linked_inputs(assets):
    from nodeflow.context import Settings

    plan = build_plan(
        parse_graph(
            {
                "nodes": {
                    "n": {"type": "TNumber", "inputs": {"value": 3}},
                    "name": {"type": "TText", "inputs": {"value": {"from": "n.value"}}},
                    "load": {"type": "LoadImage", "inputs": {"path": "coffee.png"}},
                    "save": {
                        "type": "Save",
                        "inputs": {"image": {"from": "load.image"}, "filename": {"from": "name.text"}},
                    },
                }
            }
        ),
        Settings(input_dir=assets),
    )
    assert "filename" in plan.nodes["save"].links
