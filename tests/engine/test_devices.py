"""Device placement, tested with faked device availability."""

from __future__ import annotations

from typing import Any

import pytest
import support.engine_nodes  # noqa: F401

from nodeflow import devices
from nodeflow.cache import DiskCache
from nodeflow.errors import GraphInvalid
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.plan import build_plan
from nodeflow.types import port_type

NODES = {
    "gpu": {"type": "TGpu"},
    "cpu_only": {"type": "TAdd", "inputs": {"a": {"from": "gpu.value"}}},
    "sink": {"type": "TSink", "inputs": {"value": {"from": "cpu_only.value"}}},
}


def place(nodes=NODES, available=None, device=None, default="auto"):
    graph = parse_graph({"defaults": {"device": default}, "nodes": nodes})
    plan = build_plan(graph, device=device, available=available or {"torch": {"cpu"}})
    return {n: p.device for n, p in plan.nodes.items()}, plan


def test_auto_prefers_cuda_then_mps_then_cpu():
    assert place(available={"torch": {"cpu", "cuda", "cuda:0", "mps"}})[0]["gpu"] == "cuda"
    assert place(available={"torch": {"cpu", "mps"}})[0]["gpu"] == "mps"
    placed, _ = place(available={"torch": {"cpu"}})
    assert placed == {"gpu": "cpu", "cpu_only": "cpu", "sink": "cpu"}


def test_cpu_only_nodes_stay_on_cpu_with_a_note():
    placed, plan = place(available={"torch": {"cpu", "cuda"}}, device="cuda")
    assert placed["gpu"] == "cuda" and placed["cpu_only"] == "cpu"
    assert "supports only cpu" in plan.nodes["cpu_only"].placement_note


def test_precedence_node_over_flag_over_graph_default():
    nodes = dict(NODES, gpu={"type": "TGpu", "device": "cpu"})
    avail = {"torch": {"cpu", "cuda", "mps"}}
    assert place(nodes, avail, device="mps", default="cuda")[0]["gpu"] == "cpu"
    assert place(NODES, avail, device="mps", default="cuda")[0]["gpu"] == "mps"
    assert place(NODES, avail, default="cuda")[0]["gpu"] == "cuda"


def test_unavailable_device_is_a_validation_error():
    with pytest.raises(GraphInvalid) as info:
        place(available={"torch": {"cpu"}}, device="cuda")
    issue = info.value.issues[0]
    assert (issue.node, issue.input, issue.code) == ("gpu", "device", "invalid_device")
    with pytest.raises(GraphInvalid):
        place(available={"torch": {"cpu", "cuda", "cuda:0"}}, device="cuda:3")


def test_pinning_a_cpu_node_to_cuda_is_an_error():
    nodes = dict(NODES, cpu_only={"type": "TAdd", "device": "cuda", "inputs": {"a": {"from": "gpu.value"}}})
    with pytest.raises(GraphInvalid) as info:
        place(nodes, {"torch": {"cpu", "cuda"}})
    assert info.value.issues[0].node == "cpu_only"


MOVES: list[str] = []
RECEIVED: list = []
# A value that knows which device it is on: (device, n); its size depends on n. Declared
# once, with its nodes (tests may run twice in one process).
TAGGED = port_type(
    "TEST_TAGGED",
    "a value that knows its device",
    to_device=lambda v, d: MOVES.append(d) or (d, v[1]),
    nbytes=lambda v: 100 + v[1],
)


class TMakeTagged(Node):
    frameworks = ("torch",)
    devices = ("cuda", "cpu")

    class Inputs(NodeInputs):
        n: int = Input(7)

    class Outputs(NodeOutputs):
        t: Any = Output(TAGGED)

    def run(self, n: int) -> dict:
        return {"t": (self.ctx.device, n)}


class TUseTagged(Node):
    output_node = True
    frameworks = ("torch",)
    devices = ("cuda", "cpu")

    class Inputs(NodeInputs):
        t: Any = Input(port=TAGGED)

    class Outputs(NodeOutputs):
        pass

    def run(self, t: Any) -> dict:
        RECEIVED.append((self.ctx.device, t))
        return {}


def tagged_plan(make: str, use: str):
    nodes = {
        "make": {"type": "TMakeTagged", "device": make},
        "use": {"type": "TUseTagged", "device": use, "inputs": {"t": {"from": "make.t"}}},
    }
    return place(nodes, {"torch": {"cpu", "cuda"}})[1]


def test_values_move_only_across_device_edges():
    MOVES.clear()
    Executor().run(tagged_plan("cuda", "cuda"))
    assert MOVES == []  # same device: no move
    Executor().run(tagged_plan("cuda", "cpu"))
    assert MOVES == ["cpu"]


def test_the_disk_cache_holds_cpu_values_and_the_memory_cache_device_ones(tmp_path):
    MOVES.clear()
    RECEIVED.clear()
    plan = tagged_plan("cuda", "cuda")
    ex = Executor(disk=DiskCache(tmp_path))
    ex.run(plan)
    key = plan.nodes["make"].key
    assert RECEIVED == [("cuda", ("cuda", 7))] and MOVES == ["cpu"]  # the one move: onto disk
    assert ex.memory.get(key) == ({"t": ("cuda", 7)}, "cuda") and ex.memory.used == 107
    assert DiskCache(tmp_path).get(key) == {"t": ("cpu", 7)}
    # A new process reads it from disk, on the CPU, and moves it where its consumer is.
    for use, moves, received in [("cuda", ["cuda"], ("cuda", 7)), ("cpu", [], ("cpu", 7))]:  # one key
        MOVES.clear()
        RECEIVED.clear()
        ex.memory.clear()
        result = ex.run(tagged_plan("cuda", use))
        assert result.status == "succeeded" and result.nodes["make"].source == "disk"
        assert MOVES == moves and RECEIVED == [(use, received)]


def test_a_value_made_on_the_cpu_is_stored_as_it_is(tmp_path):
    MOVES.clear()
    plan = tagged_plan("cpu", "cpu")
    Executor(disk=DiskCache(tmp_path)).run(plan)
    assert MOVES == [] and DiskCache(tmp_path).get(plan.nodes["make"].key) == {"t": ("cpu", 7)}


def test_resolve_rejects_unknown_device_names():
    with pytest.raises(devices.DeviceError):
        devices.resolve("tpu", ("cpu",), {"cpu"}, pinned=False)


def test_device_is_part_of_the_cache_key():
    _, on_cuda = place(available={"torch": {"cpu", "cuda"}})
    _, on_cpu = place(available={"torch": {"cpu", "cuda"}}, device="cpu")
    assert on_cuda.nodes["gpu"].key != on_cpu.nodes["gpu"].key
