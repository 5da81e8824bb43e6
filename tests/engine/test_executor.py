"""Executor: demand-driven runs, the two cache layers, freeing, events, cancellation."""

from __future__ import annotations

import threading

import pytest
from support.engine_nodes import CALLS, TSink

from nodeflow import events as ev
from nodeflow.cache import DiskCache, MemoryCache
from nodeflow.context import CancelToken
from nodeflow.executor import Executor
from nodeflow.graph import apply_overrides, parse_graph
from nodeflow.plan import build_plan

CHAIN = {
    "one": {"type": "TNumber", "inputs": {"value": 1}},
    "two": {"type": "TNumber", "inputs": {"value": 2}},
    "add": {"type": "TAdd", "inputs": {"a": {"from": "one.value"}, "b": {"from": "two.value"}}},
    "sink": {"type": "TSink", "inputs": {"value": {"from": "add.value"}}},
}


@pytest.fixture(autouse=True)
def reset_counts():
    CALLS.clear()
    TSink.received.clear()


def run(nodes, executor, overrides=None, **kw):
    graph = parse_graph({"nodes": nodes})
    if overrides:
        graph = apply_overrides(graph, overrides)
    events: list = []
    result = executor.run(build_plan(graph, **kw), emit=events.append)
    return result, events


def test_runs_and_returns_values(tmp_path):
    result, events = run(CHAIN, Executor(disk=DiskCache(tmp_path)))
    assert result.status == "succeeded"
    assert result.values["sink"]["value"] == 3.0
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("node_finished") == 4


def test_second_run_from_disk_reexecutes_nothing_but_the_output(tmp_path):
    run(CHAIN, Executor(disk=DiskCache(tmp_path)))
    CALLS.clear()
    result, events = run(CHAIN, Executor(disk=DiskCache(tmp_path)))  # a new process, in effect
    assert CALLS == {"TSink": 1}  # output nodes always run their side effect
    states = {n: (r.state, r.source) for n, r in result.nodes.items()}
    assert states["add"] == ("cached", "disk")
    assert states["one"] == ("cached", "downstream") and states["two"] == ("cached", "downstream")
    assert TSink.received == [3.0, 3.0]


def test_changing_one_input_reruns_only_it_and_dependents(tmp_path):
    ex = Executor(disk=DiskCache(tmp_path))
    run(CHAIN, ex)
    CALLS.clear()
    result, _ = run(CHAIN, ex, overrides={"two.value": 5})
    assert CALLS == {"TNumber": 1, "TAdd": 1, "TSink": 1}
    assert result.nodes["one"].state == "cached" and result.nodes["two"].state == "ran"
    assert result.values["sink"]["value"] == 6.0


def test_identical_nodes_share_one_result():
    nodes = {
        "x": {"type": "TNumber", "inputs": {"value": 4}},
        "y": {"type": "TNumber", "inputs": {"value": 4}},
        "add": {"type": "TAdd", "inputs": {"a": {"from": "x.value"}, "b": {"from": "y.value"}}},
        "sink": {"type": "TSink", "inputs": {"value": {"from": "add.value"}}},
    }
    plan = build_plan(parse_graph({"nodes": nodes}))
    assert plan.nodes["x"].key == plan.nodes["y"].key  # ids are not part of the key
    assert plan.nodes["x"].key != build_plan(parse_graph({"nodes": CHAIN})).nodes["two"].key


TWINS = {
    "x": {"type": "TNumber", "inputs": {"value": 4}},
    "y": {"type": "TNumber", "inputs": {"value": 4}},
    "add": {"type": "TAdd", "inputs": {"a": {"from": "x.value"}, "b": {"from": "y.value"}}},
    "sink": {"type": "TSink", "inputs": {"value": {"from": "add.value"}}},
}


def test_identical_nodes_run_once_per_run_and_the_twin_is_reported_cached(tmp_path):
    ex = Executor(disk=DiskCache(tmp_path))
    result, events = run(TWINS, ex)
    assert CALLS == {"TNumber": 1, "TAdd": 1, "TSink": 1}
    assert result.values["sink"]["value"] == 8.0
    first, twin = [n for n in result.nodes if n in ("x", "y")]  # execution order
    assert (result.nodes[first].state, result.nodes[twin].state) == ("ran", "cached")
    assert result.nodes[twin].source == f"same as {first}"
    cached = [(e.node, e.source) for e in events if isinstance(e, ev.NodeCached)]
    assert cached == [(twin, f"same as {first}")]
    assert [e.node for e in events if isinstance(e, ev.NodeStarted)] == [first, "add", "sink"]


def test_twins_are_found_down_a_chain_and_their_own_inputs_are_not_needed():
    nodes = {
        "x": {"type": "TNumber", "inputs": {"value": 4}},
        "y": {"type": "TNumber", "inputs": {"value": 4}},
        "ax": {"type": "TAdd", "inputs": {"a": {"from": "x.value"}, "b": 1}},
        "ay": {"type": "TAdd", "inputs": {"a": {"from": "y.value"}, "b": 1}},
        "sum": {"type": "TAdd", "inputs": {"a": {"from": "ax.value"}, "b": {"from": "ay.value"}}},
        "sink": {"type": "TSink", "inputs": {"value": {"from": "sum.value"}}},
    }
    result, _ = run(nodes, Executor())
    assert CALLS == {"TNumber": 1, "TAdd": 2, "TSink": 1}
    assert result.values["sink"]["value"] == 10.0
    states = {n: (r.state, r.source) for n, r in result.nodes.items()}
    first = "ax" if states["ax"][0] == "ran" else "ay"
    twin = {"ax": "ay", "ay": "ax"}[first]
    assert states[twin] == ("cached", f"same as {first}")
    # The twin's own input is never computed: the walk stops at the twin.
    assert states[{"ax": "y", "ay": "x"}[first]] == ("cached", "downstream")


def test_twin_targets_both_get_the_value_and_a_cached_first_serves_its_twin():
    ex = Executor()
    result, _ = run(TWINS, ex, only=["x", "y"])
    assert CALLS == {"TNumber": 1}
    assert result.values == {"x": {"value": 4.0}, "y": {"value": 4.0}}
    first, twin = list(result.nodes)
    result, events = run(TWINS, ex, only=["x", "y"])
    assert CALLS == {"TNumber": 1}
    assert result.values == {"x": {"value": 4.0}, "y": {"value": 4.0}}
    assert (result.nodes[first].source, result.nodes[twin].source) == ("memory", f"same as {first}")
    assert {(e.node, e.source) for e in events if isinstance(e, ev.NodeCached)} == {
        (first, "memory"),
        (twin, f"same as {first}"),
    }


def test_output_nodes_and_unseeded_nodes_are_never_deduplicated():
    nodes = {
        "n": {"type": "TNumber", "inputs": {"value": 2}},
        "s1": {"type": "TSink", "inputs": {"value": {"from": "n.value"}}},
        "s2": {"type": "TSink", "inputs": {"value": {"from": "n.value"}}},
        "r1": {"type": "TRandom"},
        "r2": {"type": "TRandom"},
        "t1": {"type": "TSink", "inputs": {"value": {"from": "r1.value"}}},
        "t2": {"type": "TSink", "inputs": {"value": {"from": "r2.value"}}},
    }
    result, _ = run(nodes, Executor())
    assert CALLS == {"TNumber": 1, "TSink": 4, "TRandom": 2}
    assert result.values["t1"] != result.values["t2"]  # two draws, not one shared
    seeded = {
        **nodes,
        "r1": {"type": "TRandom", "inputs": {"seed": 3}},
        "r2": {"type": "TRandom", "inputs": {"seed": 3}},
    }
    CALLS.clear()
    result, _ = run(seeded, Executor())
    assert CALLS["TRandom"] == 1 and result.values["t1"] == result.values["t2"]


def test_a_node_run_only_for_its_twin_is_freed_at_once(monkeypatch):
    seen_live = {}
    original = Executor._run_node

    def spy(self, plan, p, values, *rest):
        seen_live[p.id] = set(values)
        return original(self, plan, p, values, *rest)

    monkeypatch.setattr(Executor, "_run_node", spy)
    nodes = {
        "x": {"type": "TNumber", "inputs": {"value": 4}},
        "ax": {"type": "TAdd", "inputs": {"a": {"from": "x.value"}, "b": 1}},
        "y": {"type": "TNumber", "inputs": {"value": 4}},
        "ay": {"type": "TAdd", "inputs": {"a": {"from": "y.value"}, "b": 2}},
        "sum": {"type": "TAdd", "inputs": {"a": {"from": "ax.value"}, "b": {"from": "ay.value"}}},
        "sink": {"type": "TSink", "inputs": {"value": {"from": "sum.value"}}},
    }
    plan = build_plan(parse_graph({"nodes": nodes}))
    plan.nodes = {n: plan.nodes[n] for n in nodes}  # x first; a valid order
    ex = Executor()
    ex.memory.put(plan.nodes["ax"].key, ({"value": 5.0}, "cpu"), 8)  # ax known: x has no reader
    result = ex.run(plan)
    assert result.values["sink"]["value"] == 11.0
    assert CALLS == {"TNumber": 1, "TAdd": 2, "TSink": 1}
    assert result.nodes["x"].state == "ran" and result.nodes["y"].source == "same as x"
    assert "x" not in seen_live["ay"] and not {"x", "y"} & seen_live["sum"]
    # The same when x comes from the cache.
    ex = Executor()
    ex.memory.put(plan.nodes["ax"].key, ({"value": 5.0}, "cpu"), 8)
    ex.memory.put(plan.nodes["x"].key, ({"value": 4.0}, "cpu"), 8)
    CALLS.clear()
    result = ex.run(plan)
    assert CALLS == {"TAdd": 2, "TSink": 1} and result.values["sink"]["value"] == 11.0
    assert result.nodes["x"].source == "memory" and result.nodes["y"].source == "same as x"
    assert "x" not in seen_live["ay"]


def test_default_and_explicit_default_share_a_key():
    a = build_plan(
        parse_graph(
            {"nodes": {"s": {"type": "TSink", "inputs": {"value": {"from": "n.value"}}}, "n": {"type": "TNumber"}}}
        )
    )
    b = build_plan(
        parse_graph(
            {
                "nodes": {
                    "s": {"type": "TSink", "inputs": {"value": {"from": "n.value"}}},
                    "n": {"type": "TNumber", "inputs": {"value": 1.0}},
                }
            }
        )
    )
    assert a.nodes["n"].key == b.nodes["n"].key


def test_corrupt_disk_entry_is_discarded_and_recomputed(tmp_path):
    run(CHAIN, Executor(disk=DiskCache(tmp_path)))
    entries = list(tmp_path.rglob("*.pkl"))
    assert entries
    for path in entries:
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
    CALLS.clear()
    result, events = run(CHAIN, Executor(disk=DiskCache(tmp_path)))
    assert result.values["sink"]["value"] == 3.0
    assert CALLS["TAdd"] == 1
    assert any(isinstance(e, ev.Log) and "corrupt" in e.message for e in events)


def test_unseeded_random_node_reruns_and_seeded_one_is_cached(tmp_path):
    nodes = {"r": {"type": "TRandom"}, "sink": {"type": "TSink", "inputs": {"value": {"from": "r.value"}}}}
    ex = Executor(disk=DiskCache(tmp_path))
    run(nodes, ex)
    run(nodes, ex)
    assert CALLS["TRandom"] == 2
    assert TSink.received[0] != TSink.received[1]
    CALLS.clear()
    seeded = {**nodes, "r": {"type": "TRandom", "inputs": {"seed": 7}}}
    run(seeded, ex)
    run(seeded, ex)
    assert CALLS["TRandom"] == 1
    assert TSink.received[-1] == TSink.received[-2]


def test_memory_lru_is_bounded_in_bytes():
    cache = MemoryCache(max_bytes=100)
    cache.put("a", ({"v": 1}, "cpu"), 60)
    cache.put("b", ({"v": 2}, "cpu"), 60)
    assert cache.get("a") is None and cache.get("b") is not None
    assert cache.used == 60
    cache.put("huge", ({"v": 3}, "cpu"), 1000)
    assert cache.get("huge") is None


def test_values_are_freed_after_last_consumer(monkeypatch):
    seen_live = []
    original = Executor._run_node

    def spy(self, plan, p, values, *rest):
        seen_live.append((p.id, set(values)))
        return original(self, plan, p, values, *rest)

    monkeypatch.setattr(Executor, "_run_node", spy)
    nodes = {
        "one": {"type": "TNumber", "inputs": {"value": 1}},
        "add": {"type": "TAdd", "inputs": {"a": {"from": "one.value"}}},
        "add2": {"type": "TAdd", "inputs": {"a": {"from": "add.value"}}},
        "sink": {"type": "TSink", "inputs": {"value": {"from": "add2.value"}}},
    }
    run(nodes, Executor())
    live = dict(seen_live)
    assert "one" not in live["add2"]  # freed once `add` consumed it
    assert "add" not in live["sink"]


def test_only_runs_just_what_the_node_needs():
    result, _ = run(CHAIN, Executor(), only=["add"])
    assert set(result.nodes) == {"one", "two", "add"}
    assert result.values["add"]["value"] == 3.0
    assert "TSink" not in CALLS


def test_failure_names_node_and_stops():
    nodes = {"f": {"type": "TFails"}, "sink": {"type": "TSink", "inputs": {"value": {"from": "f.value"}}}}
    result, events = run(nodes, Executor())
    assert result.status == "failed"
    assert "node 'f'" in str(result.error) and "boom" in str(result.error)
    assert any(isinstance(e, ev.NodeFailed) and e.node == "f" for e in events)
    assert "TSink" not in CALLS


def test_progress_events_and_cancellation_inside_a_long_node():
    nodes = {
        "slow": {"type": "TSlow", "inputs": {"steps": 500}},
        "sink": {"type": "TSink", "inputs": {"value": {"from": "slow.value"}}},
    }
    token = CancelToken()
    events: list = []

    def emit(e):
        events.append(e)
        if isinstance(e, ev.NodeProgress) and e.value >= 3:
            token.cancel()

    result = Executor().run(build_plan(parse_graph({"nodes": nodes})), emit=emit, cancel=token)
    assert result.status == "cancelled"
    progress = [e for e in events if isinstance(e, ev.NodeProgress)]
    assert progress and progress[-1].value < 500 and progress[0].total == 500
    assert result.nodes["sink"].state == "cancelled"
    assert events[-1].status == "cancelled"


def test_cancel_mid_run_from_another_thread():
    nodes = {
        "one": {"type": "TNumber", "inputs": {"value": 1}},
        "slow": {"type": "TSlow", "inputs": {"steps": 3000, "value": {"from": "one.value"}}},  # 30 s
        "sink": {"type": "TSink", "inputs": {"value": {"from": "slow.value"}}},
    }
    token, started, events = CancelToken(), threading.Event(), []

    def emit(e):
        events.append(e)
        if isinstance(e, ev.NodeStarted) and e.node == "slow":
            started.set()

    def canceller():
        assert started.wait(60)  # the slow node is running: cancel it from here
        token.cancel()

    t = threading.Thread(target=canceller)
    t.start()
    result = Executor().run(build_plan(parse_graph({"nodes": nodes})), emit=emit, cancel=token)
    t.join(60)
    assert result.status == "cancelled"
    assert {n: r.state for n, r in result.nodes.items()} == {"one": "ran", "slow": "cancelled", "sink": "cancelled"}
    assert "TSink" not in CALLS
    assert [e.node for e in events if isinstance(e, ev.NodeStarted)] == ["one", "slow"]
    assert all(e.value < 3000 for e in events if isinstance(e, ev.NodeProgress))


def test_a_cancelled_token_stops_the_run_before_the_first_node():
    token = CancelToken()
    token.cancel()
    result = Executor().run(build_plan(parse_graph({"nodes": CHAIN})), cancel=token)
    assert result.status == "cancelled" and not CALLS


def test_disk_cache_prunes_least_recently_used(tmp_path):
    import os
    import time

    disk = DiskCache(tmp_path)
    for i, key in enumerate(["aa" + "0" * 62, "bb" + "0" * 62, "cc" + "0" * 62]):
        disk.put(key, {"v": "x" * 1000})
        os.utime(disk._path(key), (time.time() - 100 + i, time.time() - 100 + i))
    assert disk.get("aa" + "0" * 62) is not None  # a read makes it the most recent
    size = disk.entries()[0][1]
    disk.prune(2 * size)
    assert disk.get("bb" + "0" * 62) is None
    assert disk.get("aa" + "0" * 62) is not None and disk.get("cc" + "0" * 62) is not None
