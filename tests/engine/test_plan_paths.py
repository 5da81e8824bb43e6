"""The planner's less travelled paths, in-process and in exact words: file-name checks,
--device strings, device probing (and not probing), a node's own checks failing on the file
system, frameworks bound in link order, cycle reports, and values the cache key can't hash."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import support.engine_nodes  # noqa: F401  (registers the test nodes)
from pydantic import AfterValidator

from nodeflow import devices
from nodeflow.errors import GraphInvalid, shown
from nodeflow.graph import parse_graph
from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.plan import build_plan
from nodeflow.types import FLOAT, port_type
from nodeflow.validate import plan_graph

NUMBERS = port_type("TEST_NUMBERS", "test: a list of numbers", literal=list)
BOUND = port_type("TEST_BOUND", "test: a value tied to the framework that made it", framework_bound=True)
SINK = {"type": "TSink", "inputs": {"value": 1}}


class TNoInputs(Node):
    """Takes nothing."""

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self) -> dict:
        return {"value": 1.0}


class TNamed(Node):
    """Text that names a file."""

    class Inputs(NodeInputs):
        name: str = Input("a.txt", names_file=True)
        note: str = Input("")  # text that names no file: never checked as one

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, name: str, note: str) -> dict:
        return {"value": 1.0}


class TNumbers(Node):
    """A list literal."""

    class Inputs(NodeInputs):
        values: list[float] = Input([], port=NUMBERS)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, values: list) -> dict:
        return {"value": sum(values)}


class TFsCheck(Node):
    """Its own check fails the way the file system would."""

    class Inputs(NodeInputs):
        fail: Literal["long", "nul", "bare"] = Input("long")

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    @classmethod
    def check(cls, inputs: dict, settings: Any) -> None:
        if inputs["fail"] == "long":
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        if inputs["fail"] == "nul":
            raise ValueError("embedded null byte")
        raise OSError("no errno")

    def run(self, fail: str) -> dict:
        return {"value": 1.0}


class TChecksValue(Node):
    """Its check reads `value`, which is absent when the graph links it; or (bug) a key it
    never had; or raises a bare KeyError."""

    class Inputs(NodeInputs):
        value: float = Input(0.0)
        slip: Literal["none", "other", "bare"] = Input("none")

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    @classmethod
    def check(cls, inputs: dict, settings: Any) -> None:
        if inputs["slip"] == "bare":
            raise KeyError()
        inputs["nope" if inputs["slip"] == "other" else "value"]

    def run(self, value: float, slip: str) -> dict:
        return {"value": value}


class TMakeA(Node):
    """Makes a value bound to framework fa."""

    frameworks = ("fa",)

    class Outputs(NodeOutputs):
        model: Any = Output(BOUND)

    def run(self) -> dict:
        return {"model": object()}


class TTakeB(Node):
    """Takes a bound value, on framework fb only."""

    frameworks = ("fb",)

    class Inputs(NodeInputs):
        model: Any = Input(port=BOUND)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, model: Any) -> dict:
        return {"value": 1.0}


class TPathIn(Node):
    """A literal validated into a Path, which the cache key can't fingerprint."""

    class Inputs(NodeInputs):
        where: Annotated[str, AfterValidator(lambda text: Path(text))] = Input("here")

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, where: Path) -> dict:
        return {"value": 1.0}


class TPathPrint(Node):
    """Its fingerprint is a Path, which the cache key can't fingerprint."""

    class Inputs(NodeInputs):
        value: float = Input(0.0)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    @classmethod
    def fingerprint(cls, inputs: dict, settings: Any) -> Any:
        return Path("/somewhere")

    def run(self, value: float) -> dict:
        return {"value": value}


def issues(nodes: dict, **kw) -> list[str]:
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph({"nodes": nodes}), **kw)
    return [f"{i.code} | {i}" for i in info.value.issues]


def all_issues(data: dict, **kw) -> list[str]:
    """Every stage's issues, as the CLI and server report them (parse, then plan)."""
    with pytest.raises(GraphInvalid) as info:
        plan_graph(lambda: parse_graph(data), **kw)
    return [f"{i.code} | {i}" for i in info.value.issues]


# -- literals -------------------------------------------------------------------------------

NO_FILE = "can't name a file:"


def test_text_that_names_a_file_is_checked_before_the_file_system_sees_it():
    long_part = "x" * 256
    assert issues(
        {
            "a": {"type": "TNamed", "inputs": {"name": "a\0b", "note": "a\0b"}},
            "b": {"type": "TNamed", "inputs": {"name": f"dir/{long_part}.txt"}},
            "c": {"type": "TNamed", "inputs": {"name": "d/" * 2048}},
            "s": SINK,
        }
    ) == [
        f"invalid_file_name | node 'a', input 'name': 'a\\x00b' {NO_FILE} it holds a NUL byte, which no file name can",
        f"invalid_file_name | node 'b', input 'name': {shown(f'dir/{long_part}.txt')} {NO_FILE} a name in it "
        "is 260 bytes long: file names are limited to 255 bytes",
        f"invalid_file_name | node 'c', input 'name': {shown('d/' * 2048)} {NO_FILE} it is 4096 bytes long: "
        "paths are limited to 4095",
    ]
    build_plan(parse_graph({"nodes": {"a": {"type": "TNamed", "inputs": {"name": "x" * 255}}, "s": SINK}}))


def test_literal_problems_in_exact_words():
    assert issues(
        {
            "n": {"type": "TNumber", "inputs": {"value": "x", "label": "c"}},
            "m": {"type": "TNumber", "inputs": {"value": 5000}},
            "save": {"type": "Save", "inputs": {"image": 3}},
        }
    ) == [
        "invalid_type | node 'n', input 'value': Input should be a valid number (got 'x')",
        "invalid_choice | node 'n', input 'label': 'c' is not one of: a, b (got 'c')",
        "value_too_large | node 'm', input 'value': Input should be less than or equal to 1000 (got 5000)",
        "link_required | node 'save', input 'image': IMAGE input needs a link {\"from\": \"node.output\"}, "
        "not a literal",
    ]


def test_a_value_the_json_reader_refused_is_reported_once_and_the_rest_of_the_literal_still_checked():
    assert all_issues(
        {"nodes": {"n": {"type": "TNumbers", "inputs": {"values": [float("nan"), "x", 2]}}, "s": SINK}}
    ) == [
        "not_finite | node 'n', input 'values': graph: nodes.n.inputs.values[0]: 'nan' is not allowed: "
        "numbers must be finite (NaN and Infinity are not JSON)",
        "invalid_type | node 'n', input 'values': Input should be a valid number (got [<not_finite>, 'x', 2])",
    ]


# -- inputs and links -------------------------------------------------------------------------


def test_input_and_link_problems_in_exact_words():
    assert issues(
        {
            "z": {"type": "TNoInputs", "inputs": {"x": 1}},
            "n": {"type": "TNumber", "inputs": {"colour": 1, "value": "x"}},
            "u": {"type": "Unknown"},
            "add": {"type": "TAdd", "inputs": {"a": {"from": "u.value"}, "b": {"from": "ghost.value"}}},
            "p": {"type": "TPartial"},
            "miss": {"type": "TAdd", "inputs": {"a": {"from": "p.c"}, "b": {"from": "cnt.n"}}},
            "cnt": {"type": "TCount"},
            "s": SINK,
        }
    ) == [
        "unknown_input | node 'z', input 'x': TNoInputs has no input 'x' (inputs: none)",
        "unknown_input | node 'n', input 'colour': TNumber has no input 'colour' (inputs: value, label)",
        "invalid_type | node 'n', input 'value': Input should be a valid number (got 'x')",
        "unknown_type | node 'u': unknown node type 'Unknown' (see `nodeflow nodes`)",
        "missing_node | node 'add', input 'b': link to 'ghost.value': there is no node 'ghost'",
        "missing_output | node 'miss', input 'a': link to 'p.c': TPartial has no output 'c' (outputs: b, a)",
        "type_mismatch | node 'miss', input 'b': link to 'cnt.n' gives INT, this input takes FLOAT",
    ]


def test_a_node_too_broken_to_check_does_not_stop_the_others_being_checked():
    assert all_issues({"nodes": {"broken": 5, "n": {"type": "TNumber", "inputs": {"value": "x"}}, "s": SINK}}) == [
        "invalid_structure | node 'broken': graph: nodes.broken: Input should be a valid dictionary or "
        "instance of NodeSpec",
        "invalid_type | node 'n', input 'value': Input should be a valid number (got 'x')",
    ]


def test_a_check_the_file_system_fails_names_the_node_and_the_reason():
    assert issues(
        {
            "a": {"type": "TFsCheck", "inputs": {"fail": "long"}},
            "b": {"type": "TFsCheck", "inputs": {"fail": "nul"}},
            "c": {"type": "TFsCheck", "inputs": {"fail": "bare"}},
            "s": SINK,
        }
    ) == [
        "invalid_input | node 'a': TFsCheck can't use its inputs: File name too long",
        "invalid_input | node 'b': TFsCheck can't use its inputs: ValueError",
        "invalid_input | node 'c': TFsCheck can't use its inputs: OSError",
    ]


def test_a_check_that_needs_a_linked_input_says_to_give_it_as_a_value():
    assert issues(
        {
            "n": {"type": "TNumber"},
            "c": {"type": "TChecksValue", "inputs": {"value": {"from": "n.value"}}},
            "s": {"type": "TSink", "inputs": {"value": {"from": "c.value"}}},
        }
    ) == [
        "invalid_link | node 'c', input 'value': TChecksValue checks 'value' before running (a file, a model): "
        "give it as a value, not a link"
    ]


@pytest.mark.parametrize("slip", ["other", "bare"])
def test_a_key_error_that_is_no_linked_input_is_the_nodes_own_bug_and_is_not_hidden(slip):
    graph = parse_graph(
        {
            "nodes": {
                "n": {"type": "TNumber"},
                "c": {"type": "TChecksValue", "inputs": {"value": {"from": "n.value"}, "slip": slip}},
                "s": {"type": "TSink", "inputs": {"value": {"from": "c.value"}}},
            }
        }
    )
    with pytest.raises(KeyError) as info:
        build_plan(graph)
    assert info.value.args == (("nope",) if slip == "other" else ())


# -- order ----------------------------------------------------------------------------------


def test_the_plan_runs_in_file_order_where_links_leave_it_free():
    plan = build_plan(
        parse_graph(
            {
                "nodes": {
                    "z": {"type": "TNumber"},
                    "a": {"type": "TNumber"},
                    "add": {"type": "TAdd", "inputs": {"a": {"from": "a.value"}, "b": {"from": "z.value"}}},
                    "s": {"type": "TSink", "inputs": {"value": {"from": "add.value"}}},
                }
            }
        )
    )
    assert plan.order == ["z", "a", "add", "s"]


def test_frameworks_are_bound_in_link_order_and_reported_in_file_order():
    """The takers come before their maker in the file: binding follows the links (else
    the maker's framework is not known yet), the report the file."""
    assert issues(
        {
            "z": {"type": "TTakeB", "inputs": {"model": {"from": "m.model"}}},
            "a": {"type": "TTakeB", "inputs": {"model": {"from": "m.model"}}},
            "m": {"type": "TMakeA"},
            "s": SINK,
        }
    ) == [
        f"unsupported_framework | node '{n}', input 'model': this input brings a fa value (from 'm'), "
        "but TTakeB runs on fb only"
        for n in "za"
    ]


# -- cycles -----------------------------------------------------------------------------------


def cycles(nodes: dict) -> list[str]:
    return [i for i in issues(nodes) if i.startswith("cycle")]


def test_cycles_are_reported_in_file_order_even_when_one_feeds_the_other():
    """networkx finds the downstream cycle first; the report follows the file. A node in no
    cycle, first in the file, stops nothing."""
    assert cycles(
        {
            "plain": {"type": "TNumber"},
            "x": {"type": "TAdd", "inputs": {"a": {"from": "y.value"}}},
            "y": {"type": "TAdd", "inputs": {"a": {"from": "x.value"}}},
            "p": {"type": "TAdd", "inputs": {"a": {"from": "q.value"}, "b": {"from": "x.value"}}},
            "q": {"type": "TAdd", "inputs": {"a": {"from": "p.value"}}},
            "s": SINK,
        }
    ) == [
        "cycle | node 'y', input 'a': the graph has a cycle: y.a takes x.value; x.a takes y.value",
        "cycle | node 'q', input 'a': the graph has a cycle: q.a takes p.value; p.a takes q.value",
    ]


def test_each_cycle_is_told_from_its_first_node_in_the_file():
    """Not from its lowest name, nor from wherever a set happens to start: four cycles whose
    first node sorts last."""
    nodes: dict = {"s": SINK}
    for k in "ABCD":
        nodes |= {
            f"{k}z": {"type": "TAdd", "inputs": {"a": {"from": f"{k}a.value"}}},
            f"{k}m": {"type": "TAdd", "inputs": {"a": {"from": f"{k}z.value"}}},
            f"{k}a": {"type": "TAdd", "inputs": {"a": {"from": f"{k}m.value"}}},
        }
    assert cycles(nodes) == [
        f"cycle | node '{k}m', input 'a': the graph has a cycle: {k}m.a takes {k}z.value; "
        f"{k}a.a takes {k}m.value; {k}z.a takes {k}a.value"
        for k in "ABCD"
    ]


# -- devices --------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cuda:abc", "", "CUDA", "cuda:", "gpu"])
def test_a_bad_device_flag_is_one_issue_and_the_graph_default_still_applies(device):
    nodes = {"n": {"type": "TNumber"}, "s": {"type": "TSink", "inputs": {"value": {"from": "n.value"}}}}
    assert issues(nodes, device=device) == [
        f"invalid_device | --device: {device!r} is not a device: use auto, cpu, cuda, cuda:N (N a GPU index) or mps"
    ]


@pytest.fixture
def probes(monkeypatch):
    """The probe of torch (what TGpu runs on): sees what the test sets; records each call."""
    calls: list[str] = []
    seen = {"devices": {"cpu"}}

    def probe():
        calls.append("torch")
        return set(seen["devices"])

    monkeypatch.setitem(devices._PROBES, "torch", probe)
    monkeypatch.setattr(devices, "_probe_cache", {})
    monkeypatch.delitem(devices._MODULES, "torch", raising=False)  # a faked torch counts as installed
    return calls, seen


def placed(node: dict | None = None, **kw) -> str:
    graph = parse_graph(
        {
            "nodes": {
                "t": {"type": "TGpu", **(node or {})},
                "s": {"type": "TSink", "inputs": {"value": {"from": "t.value"}}},
            }
        }
    )
    return build_plan(graph, **kw).nodes["t"].device


@pytest.mark.parametrize("found, device", [({"cpu"}, "cpu"), ({"cpu", "cuda", "cuda:0"}, "cuda")])
def test_planning_probes_the_framework_by_default(probes, found, device):
    calls, seen = probes
    seen["devices"] = found
    assert placed() == device and calls == ["torch"]


def test_a_check_without_probing_assumes_what_the_node_supports(probes):
    calls, seen = probes
    assert placed(probe=False) == "cuda"  # auto: the node's best, assumed, not probed
    assert placed({"device": "cpu"}, probe=False) == "cpu"
    assert calls == []
    assert placed(probe=False, available={"torch": {"cpu"}}) == "cpu"  # faked devices are used
    assert calls == []


def test_a_check_without_probing_still_probes_for_a_gpu_asked_by_name(probes):
    calls, seen = probes
    with pytest.raises(GraphInvalid) as info:
        placed({"device": "cuda"}, probe=False)
    assert calls == ["torch"]
    assert [f"{i.code} | {i}" for i in info.value.issues] == [
        "invalid_device | node 't', input 'device': device 'cuda' is not available here (found: cpu)"
    ]


def test_faked_devices_add_to_the_cpu_and_a_framework_left_out_has_only_the_cpu(probes):
    assert placed({"device": "cpu"}, available={"torch": {"cuda"}}) == "cpu"
    assert placed(available={"torch": {"cuda"}}) == "cuda"
    assert placed(available={}) == "cpu"
    assert probes[0] == []


def test_every_node_placed_badly_is_reported():
    """After a name parse_graph refused and after a first refusal, the next nodes are still placed."""
    assert all_issues(
        {
            "nodes": {
                "a": {"type": "TGpu", "device": "gpu0"},
                "b": {"type": "TGpu", "device": "cuda:7"},
                "c": {"type": "TAdd", "device": "cuda", "inputs": {"a": 1}},
                "s": {"type": "TSink", "inputs": {"value": {"from": "b.value"}}},
            }
        },
        available={"torch": {"cpu"}},
    ) == [
        "invalid_device | node 'a', input 'device': 'gpu0' is not a device: use auto, cpu, cuda, cuda:N "
        "(N a GPU index) or mps",
        "invalid_device | node 'b', input 'device': device 'cuda:7' is not available here (found: cpu)",
        "invalid_device | node 'c', input 'device': this node runs on cpu, not cuda",
    ]


# -- cache keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("node_type", ["TPathIn", "TPathPrint"])
def test_a_value_the_key_cannot_fingerprint_makes_the_node_and_its_dependents_unstable(node_type):
    nodes = {
        "p": {"type": node_type, "inputs": {"where": "x"} if node_type == "TPathIn" else {}},
        "add": {"type": "TAdd", "inputs": {"a": {"from": "p.value"}}},
        "s": {"type": "TSink", "inputs": {"value": {"from": "add.value"}}},
    }
    one, two = (build_plan(parse_graph({"nodes": nodes})) for _ in range(2))
    for plan in (one, two):
        assert [plan.nodes[n].stable for n in ("p", "add", "s")] == [False, False, False]
        assert all(isinstance(p.key, str) and len(p.key) == 64 for p in plan.nodes.values())
    assert all(one.nodes[n].key != two.nodes[n].key for n in ("p", "add", "s"))
    assert not one.cacheable("p") and not one.cacheable("add")
