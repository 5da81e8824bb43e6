"""Property: whatever a bundled graph is mutated into, validating it raises nothing but
the project's own GraphInvalid, and every message prints and stays short."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import ASSETS, GRAPHS

from nodeflow.context import Settings
from nodeflow.errors import MESSAGE_LIMIT, GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.jsonload import loads
from nodeflow.validate import plan_graph

BUNDLED = {p.name: json.loads(p.read_text()) for p in sorted(GRAPHS.glob("*.json"))}
OUT = Path(tempfile.mkdtemp(prefix="nodeflow-fuzz-"))


def _huge_int() -> int:
    return 10**5000  # built, not shown: hypothesis can't repr it


texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b.png",
            "\ud800",
            "x" * 300,
            "../../etc/passwd",
            "/etc/passwd",
            "~/x.png",
            "cuda:abc",
            "cuda:99",
            "mps",
            "auto",
            "load.image",
            "nan",
            "C:\\x.png",
            "file:///etc/passwd",
            "http://127.0.0.1:9/x",
        ]
    ),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.builds(_huge_int),
    st.sampled_from([float("nan"), float("inf")]),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(texts, inner, max_size=3),
        st.builds(lambda ref: {"from": ref}, st.sampled_from(["load.image", "nope.x", "a", "save.path"])),
    ),
    max_leaves=6,
)


def _containers(data, path=()):
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _containers(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _containers(v, path + (i,))


@st.composite
def mutated(draw):
    graph = copy.deepcopy(BUNDLED[draw(st.sampled_from(sorted(BUNDLED)))])
    for _ in range(draw(st.integers(1, 4))):
        spots = [(p, c) for p, c in _containers(graph) if isinstance(c, (dict, list)) and c]
        path, container = draw(st.sampled_from(spots))
        key = draw(st.sampled_from(list(container) if isinstance(container, dict) else list(range(len(container)))))
        action = draw(st.sampled_from(["replace", "delete", "add", "rename"]))
        if action == "replace":
            container[key] = draw(values)
        elif action == "delete" and isinstance(container, dict):
            del container[key]
        elif action == "add" and isinstance(container, dict):
            container[draw(texts)] = draw(values)
        elif action == "rename" and isinstance(container, dict):
            container[draw(texts)] = container.pop(key)
    return graph


def _validate(load) -> None:
    try:
        plan_graph(load, settings=Settings(input_dir=ASSETS, output_dir=OUT), probe=False)
    except GraphInvalid as exc:
        assert exc.issues
        for issue in exc.issues:
            text = str(issue)
            text.encode("utf-8")  # prints anywhere: no lone surrogates
            assert len(issue.message) <= MESSAGE_LIMIT + 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_a_mutated_graph_gives_graph_invalid_or_a_plan(graph):
    _validate(lambda: parse_graph(graph))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BUNDLED)), st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_mangled_graph_text_gives_graph_invalid_or_a_plan(name, where, junk):
    text = (GRAPHS / name).read_bytes()
    where %= len(text)
    mangled = text[:where] + junk + text[where + len(junk) :]

    def load():
        try:
            data, problems = loads(mangled)
        except ValueError as exc:  # not JSON at all: what read_graph_file reports as invalid_json
            from nodeflow.errors import Issue

            raise GraphInvalid([Issue("invalid_json", str(exc)[:200])]) from None
        return parse_graph(data, problems=problems)

    _validate(load)
