"""The planner's exact words and its cache keys: both are contracts (users read the
issues; the disk cache outlives releases only while keys stay the same)."""

from __future__ import annotations

import pytest
import support.engine_nodes  # noqa: F401  (registers the test nodes)

from nodeflow.errors import GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan


def issues(nodes: dict, **kw) -> list[str]:
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph({"nodes": nodes}), **kw)
    return [f"{i.code} | {i}" for i in info.value.issues]


def test_the_issues_say_exactly_what_is_wrong_and_where():
    assert issues({"n": {"type": "TNumber", "inputs": {"colour": 1}}, "s": {"type": "TSink"}}) == [
        "unknown_input | node 'n', input 'colour': TNumber has no input 'colour' (inputs: value, label)",
        "required_input_missing | node 's', input 'value': required FLOAT input is missing",
    ]
    assert issues({"n": {"type": "Nope"}}) == [
        "unknown_type | node 'n': unknown node type 'Nope' (see `nodeflow nodes`)"
    ]
    assert issues({}) == ["empty_graph | the graph has no nodes"]
    assert issues({"n": {"type": "TNumber"}}) == [
        "no_output | the graph has no output node (such as Save), so nothing would run"
    ]
    assert issues(
        {"a": {"type": "TAdd", "inputs": {"a": {"from": "bad"}}}, "s": {"type": "TSink", "inputs": {"value": 1}}}
    ) == ["invalid_link | node 'a', input 'a': a link must be {\"from\": \"node_id.output_name\"}"]
    assert issues(
        {"n": {"type": "TNumber"}, "s": {"type": "TSink", "inputs": {"value": {"from": "n.value"}}}}, only=["zz"]
    ) == ["unknown_node | node 'zz': --only 'zz': there is no such node"]


def test_cache_keys_stay_the_same_across_releases():
    plan = build_plan(
        parse_graph(
            {
                "nodes": {
                    "n": {"type": "TNumber", "inputs": {"value": 3}},
                    "a": {"type": "TAdd", "inputs": {"a": {"from": "n.value"}, "b": 2}},
                    "s": {"type": "TSink", "inputs": {"value": {"from": "a.value"}}},
                }
            }
        )
    )
    assert {n: p.key for n, p in plan.nodes.items()} == {
        "n": "5a7af2b416d362e14636aa71a099f135c14f989a7f59f7ff2bb6b354c3a62ede",
        "a": "841102d6ced0afa2ab7143d3df19b3f5d259a603d4044a4611ecbf091c3b791c",
        "s": "39c45d5c5fca49857273cb716b284153f65918bdc254b11aa4c6112ee20279c2",
    }


def test_an_unseeded_node_gets_a_fresh_key_every_plan():
    nodes = {"r": {"type": "TRandom"}, "s": {"type": "TSink", "inputs": {"value": {"from": "r.value"}}}}
    one, two = (build_plan(parse_graph({"nodes": nodes})) for _ in range(2))
    assert not one.nodes["r"].stable and not one.nodes["s"].stable
    assert one.nodes["r"].key != two.nodes["r"].key and one.nodes["s"].key != two.nodes["s"].key
