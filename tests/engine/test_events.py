"""The executor's event stream and reports, field by field: what every front end
(CLI, HTTP, ComfyUI layer) renders."""

from __future__ import annotations

import re

import pytest
from support.engine_nodes import CALLS, TCtx

from nodeflow import events as ev
from nodeflow.cache import DiskCache, MemoryCache
from nodeflow.context import Settings
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan

CHAIN = {
    "one": {"type": "TNumber", "inputs": {"value": 1}},
    "ctx": {"type": "TCtx", "inputs": {"value": {"from": "one.value"}}},
    "sink": {"type": "TSink", "inputs": {"value": {"from": "ctx.value"}}},
}


@pytest.fixture(autouse=True)
def reset():
    CALLS.clear()
    TCtx.seen.clear()


def plan_of(nodes: dict, settings: Settings | None = None, **kw):
    return build_plan(parse_graph({"nodes": nodes}), settings, **kw)


def run(plan, executor=None, **kw):
    events: list = []
    result = (executor or Executor()).run(plan, emit=events.append, **kw)
    return result, events


def timeless(events) -> list[dict]:
    """The events as dicts, without their timings (checked apart)."""
    out = []
    for e in events:
        d = e.to_dict()
        seconds = d.pop("seconds", 0.0)
        assert isinstance(seconds, float) and 0 <= seconds < 60
        out.append(d)
    return out


def test_a_run_reports_every_step_in_order():
    plan = plan_of(CHAIN)
    result, events = run(plan, run_id="r1")
    assert timeless(events) == [
        {
            "event": "run_started",
            "run_id": "r1",
            "nodes": ["one", "ctx", "sink"],
            "placement": {"one": "cpu", "ctx": "cpu", "sink": "cpu"},
            "frameworks": {},
        },
        {"event": "node_started", "node": "one", "type": "TNumber", "device": "cpu"},
        {"event": "node_finished", "node": "one", "type": "TNumber", "outputs": []},
        {"event": "node_started", "node": "ctx", "type": "TCtx", "device": "cpu"},
        {"event": "node_finished", "node": "ctx", "type": "TCtx", "outputs": []},
        {"event": "node_started", "node": "sink", "type": "TSink", "device": "cpu"},
        {"event": "node_finished", "node": "sink", "type": "TSink", "outputs": []},
        {"event": "run_finished", "run_id": "r1", "status": "succeeded", "error": None},
    ]
    assert (result.run_id, result.status, result.error, result.values) == (
        "r1",
        "succeeded",
        None,
        {"sink": {"value": 1.0}},
    )
    assert 0 < result.seconds < 60 and result.seconds >= sum(r.seconds for r in result.nodes.values())
    assert all(r.state == "ran" and r.device == "cpu" and 0 < r.seconds < 60 for r in result.nodes.values())
    # What a node learns from its context:
    assert TCtx.seen == [
        {
            "node": "ctx",
            "type": "TCtx",
            "device": "cpu",
            "key": plan.nodes["ctx"].key,
            "settings": plan.settings,
            "graph_json": plan.graph.to_json(),
        }
    ]


def test_a_run_without_an_id_gets_one():
    result, events = run(plan_of(CHAIN))
    assert re.fullmatch(r"[0-9a-f]{12}", result.run_id)
    assert events[0].run_id == events[-1].run_id == result.run_id


def test_a_cached_run_announces_its_cached_nodes_up_front():
    ex = Executor()
    plan = plan_of(CHAIN)
    run(plan, ex)
    result, events = run(plan, ex, run_id="r2")
    assert timeless(events)[1:4] == [
        {"event": "node_cached", "node": "one", "type": "TNumber", "source": "downstream"},
        {"event": "node_cached", "node": "ctx", "type": "TCtx", "source": "memory"},
        {"event": "node_started", "node": "sink", "type": "TSink", "device": "cpu"},
    ]
    assert (result.nodes["ctx"].state, result.nodes["ctx"].source) == ("cached", "memory")


def test_a_twin_is_announced_with_its_type():
    nodes = {
        "a": {"type": "TCtx", "inputs": {"value": 2}},
        "b": {"type": "TCtx", "inputs": {"value": 2}},
        "sa": {"type": "TSink", "inputs": {"value": {"from": "a.value"}}},
        "sb": {"type": "TSink", "inputs": {"value": {"from": "b.value"}}},
    }
    plan = plan_of(nodes)
    first, twin = [n for n in plan.order if n in "ab"]
    _, events = run(plan)
    assert [e.to_dict() for e in events if isinstance(e, ev.NodeCached)] == [
        {"event": "node_cached", "node": twin, "type": "TCtx", "source": f"same as {first}"}
    ]
    assert len(TCtx.seen) == 1


def test_placement_notes_are_logged_per_node():
    nodes = {
        "gpu": {"type": "TGpu"},
        "cpu_only": {"type": "TAdd", "inputs": {"a": {"from": "gpu.value"}}},
        "sink": {"type": "TSink", "inputs": {"value": {"from": "cpu_only.value"}}},
    }
    plan = plan_of(nodes, device="cuda", available={"torch": {"cpu", "cuda"}})
    note = plan.nodes["cpu_only"].placement_note
    assert note and not plan.nodes["gpu"].placement_note
    plan.nodes["gpu"].device = "cpu"  # TGpu can't really run on a GPU here
    _, events = run(plan)
    logs = [e.to_dict() for e in events if isinstance(e, ev.Log)]
    assert logs == [
        {"event": "log", "message": f"placement: {n} ({t}) on cpu: {note}", "node": n}
        for n, t in [("cpu_only", "TAdd"), ("sink", "TSink")]
    ]


def test_a_failing_node_is_reported_with_its_type_and_message():
    nodes = {"f": {"type": "TFails"}, "sink": {"type": "TSink", "inputs": {"value": {"from": "f.value"}}}}
    result, events = run(plan_of(nodes), run_id="r3")
    assert timeless(events)[-2:] == [
        {"event": "node_failed", "node": "f", "type": "TFails", "error": "ValueError: boom", "input": None},
        {"event": "run_finished", "run_id": "r3", "status": "failed", "error": "node 'f' (TFails): ValueError: boom"},
    ]
    e = result.error
    assert (e.node, e.node_type, e.message, e.input) == ("f", "TFails", "ValueError: boom", None)
    f = result.nodes["f"]
    assert (f.state, f.error) == ("failed", "ValueError: boom") and 0 <= f.seconds < 60
    assert result.nodes["sink"].state == "pending" and result.values == {}


def test_an_input_error_at_run_time_names_the_input():
    nodes = {"r": {"type": "TRejects"}, "sink": {"type": "TSink", "inputs": {"value": {"from": "r.value"}}}}
    result, events = run(plan_of(nodes))
    assert timeless(events)[-2] == {
        "event": "node_failed",
        "node": "r",
        "type": "TRejects",
        "error": "must be even",
        "input": "value",
    }
    assert (result.error.node_type, result.error.input) == ("TRejects", "value")
    assert str(result.error) == "node 'r' (TRejects), input 'value': must be even"
    assert result.nodes["r"].error == "must be even"


def test_a_node_that_forgets_an_output_fails_naming_them():
    nodes = {"p": {"type": "TPartial"}, "sink": {"type": "TSink", "inputs": {"value": {"from": "p.a"}}}}
    result, _ = run(plan_of(nodes))
    assert result.status == "failed"
    assert result.error.message == "RuntimeError: node returned no value for output(s) a, b"


def test_files_written_are_reported_and_an_up_to_date_file_counts_as_cached(tmp_path):
    settings = Settings(input_dir=tmp_path, output_dir=tmp_path)
    nodes = {
        "n": {"type": "TNumber", "inputs": {"value": 5}},
        "file": {"type": "TFile", "inputs": {"value": {"from": "n.value"}}},
    }
    path = str(tmp_path / "value.txt")
    result, events = run(plan_of(nodes, settings))
    assert result.files == [path] and result.nodes["file"].outputs == [path]
    assert timeless(events)[-2] == {"event": "node_finished", "node": "file", "type": "TFile", "outputs": [path]}
    result, events = run(plan_of(nodes, settings))
    f = result.nodes["file"]
    assert (f.state, f.source, f.outputs) == ("cached", "output up to date", [path])
    assert timeless(events)[-2] == {
        "event": "node_cached",
        "node": "file",
        "type": "TFile",
        "source": "output up to date",
    }
    assert result.files == [path]


def test_a_corrupt_disk_entry_is_logged_against_its_node(tmp_path):
    plan = plan_of(CHAIN)
    run(plan, Executor(disk=DiskCache(tmp_path)))
    for path in tmp_path.rglob("*.pkl"):
        path.write_bytes(b"garbage")
    _, events = run(plan, Executor(disk=DiskCache(tmp_path)))
    logs = [(e.node, e.message) for e in events if isinstance(e, ev.Log)]
    assert logs == [
        (n, f"discarded corrupt cache entry {plan.nodes[n].key}.pkl: checksum mismatch") for n in ("ctx", "one")
    ]  # walking back from the output


def test_an_executor_uses_the_caches_it_is_given(tmp_path):
    memory, disk = MemoryCache(1000), DiskCache(tmp_path)
    ex = Executor(memory, disk)
    assert ex.memory is memory and ex.disk is disk
    run(plan_of(CHAIN), ex)
    assert len(memory) == 2 and len(disk.entries()) == 2  # one, ctx; never the output node
    from nodeflow.cache import memory_budget

    assert Executor().memory.max_bytes == memory_budget() and Executor().disk is None


def test_run_started_names_the_framework_of_each_node_that_has_one():
    plan = plan_of(
        {"gpu": {"type": "TGpu"}, "sink": {"type": "TSink", "inputs": {"value": {"from": "gpu.value"}}}},
        available={"torch": {"cpu", "cuda"}},
        device="cpu",
    )
    _, events = run(plan, run_id="r2")
    assert timeless(events)[0] == {
        "event": "run_started",
        "run_id": "r2",
        "nodes": ["gpu", "sink"],
        "placement": {"gpu": "cpu", "sink": "cpu"},
        "frameworks": {"gpu": "torch"},
    }
