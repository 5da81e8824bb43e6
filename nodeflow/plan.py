"""Graph -> validated plan. Every problem is collected before anything runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from . import devices
from .context import Settings
from .errors import GraphInvalid, Issue, shown
from .filenames import file_name_problem
from .frameworks import bind_frameworks, missing_framework_nodes
from .graph import Graph, Link, as_link
from .hashing import Unhashable, digest
from .jsonload import Refused
from .node import InputError, Node
from .registry import load_nodes

_PYDANTIC_CODES = {
    "greater_than_equal": "value_too_small",
    "greater_than": "value_too_small",
    "less_than_equal": "value_too_large",
    "less_than": "value_too_large",
    "literal_error": "invalid_choice",
}


@dataclass
class PlannedNode:
    id: str
    cls: type[Node]
    literals: dict[str, Any]  # validated literals, defaults filled in
    links: dict[str, Link]
    device: str = "cpu"
    placement_note: str = ""
    framework: str | None = None  # what it runs on (see nodeflow.frameworks)
    key: str = ""
    stable: bool = True  # False: not deterministic (unseeded), or unhashable inputs
    extra: Any = None  # the node's fingerprint (cache-key material)
    linked: set[str] = field(default_factory=set)  # every input given as a link, resolved or not


@dataclass
class Plan:
    graph: Graph
    nodes: dict[str, PlannedNode]  # only the nodes needed, in execution order
    targets: list[str]  # requested nodes (output nodes by default)
    settings: Settings

    @property
    def order(self) -> list[str]:
        return list(self.nodes)

    def cacheable(self, nid: str) -> bool:
        p = self.nodes[nid]
        return p.stable and not p.cls.output_node


def _check_literal(nid: str, cls: type[Node], name: str, value: Any, issues: list[Issue]) -> Any:
    spec = cls.input_specs[name]
    if spec.adapter is None:
        issues.append(
            Issue(
                "link_required",
                f'{spec.port.name} input needs a link {{"from": "node.output"}}, not a literal',
                nid,
                name,
            )
        )
        return None
    try:
        checked = spec.validate_literal(value)
    except ValidationError as exc:
        for err in exc.errors():
            if isinstance(err.get("input"), Refused):
                continue  # reported by the JSON reader
            code = _PYDANTIC_CODES.get(err["type"], "invalid_type")
            msg = err["msg"]
            if code == "invalid_choice":
                msg = f"{shown(value)} is not one of: {', '.join(map(str, spec.choices or []))}"
            issues.append(Issue(code, f"{msg} (got {shown(value)})", nid, name))
        return None
    problem = spec.names_file and isinstance(checked, str) and file_name_problem(checked)
    if problem:
        issues.append(Issue("invalid_file_name", f"{shown(checked)} can't name a file: {problem}", nid, name))
    return checked


def _check_node(
    nid: str, spec_inputs: dict, cls: type[Node], graph: Graph, registry: dict, issues: list[Issue]
) -> PlannedNode:
    literals, links = {}, {}
    linked: set[str] = set()
    for name, value in spec_inputs.items():
        if name not in cls.input_specs:
            known = ", ".join(cls.input_specs) or "none"
            issues.append(Issue("unknown_input", f"{cls.type} has no input {shown(name)} (inputs: {known})", nid, name))
            continue
        link = as_link(value)
        if link is None:
            literals[name] = _check_literal(nid, cls, name, value, issues)
            continue
        linked.add(name)  # resolved or not: the node's own checks must not expect it as a literal
        if isinstance(link, str):
            issues.append(Issue("invalid_link", link, nid, name))
        elif link.node not in graph.nodes:
            issues.append(
                Issue("missing_node", f"link to {shown(str(link))}: there is no node {shown(link.node)}", nid, name)
            )
        else:
            src_cls = registry.get(graph.nodes[link.node].type)
            if src_cls is None:
                continue  # reported as unknown_type on the source node
            out = src_cls.output_specs.get(link.output)
            want = cls.input_specs[name].port
            if out is None:
                issues.append(
                    Issue(
                        "missing_output",
                        f"link to {shown(str(link))}: {src_cls.type} has no output "
                        f"{shown(link.output)} (outputs: {', '.join(src_cls.output_specs)})",
                        nid,
                        name,
                    )
                )
            elif out.port is not want:
                issues.append(
                    Issue(
                        "type_mismatch",
                        f"link to {shown(str(link))} gives {out.port.name}, this input takes {want.name}",
                        nid,
                        name,
                    )
                )
            else:
                links[name] = link
    for name, ispec in cls.input_specs.items():
        if name in spec_inputs:
            continue
        if ispec.required:
            issues.append(Issue("required_input_missing", f"required {ispec.port.name} input is missing", nid, name))
        else:
            literals[name] = ispec.default
    return PlannedNode(nid, cls, literals, links, linked=linked)


def _link_graph(planned: dict[str, PlannedNode]):
    """networkx DiGraph of the links: an edge source -> node carries the [(input, output)] it
    feeds. networkx is imported here, on use, so `nodeflow --help` stays fast."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(planned)
    for nid, p in planned.items():
        for name, link in p.links.items():
            if not g.has_edge(link.node, nid):
                g.add_edge(link.node, nid, links=[])
            g.edges[link.node, nid]["links"].append((name, link.output))
    return g


def _cycle_issues(g) -> list[Issue]:
    """One issue per cycle (one cycle per strongly connected component), naming each link in
    it; the issue points at the first link's node and input. A self-loop is a cycle too."""
    import networkx as nx

    file_order: dict[str, int] = {nid: i for i, nid in enumerate(g)}
    issues = []
    for scc in sorted(nx.strongly_connected_components(g), key=lambda c: min(file_order[n] for n in c)):
        sub = g.subgraph(scc)
        if not sub.number_of_edges():
            continue
        edges = nx.find_cycle(sub, source=min(scc, key=file_order.__getitem__))
        links = [(v, name, u, out) for u, v in edges for name, out in g.edges[u, v]["links"]]
        text = "; ".join(f"{v}.{name} takes {u}.{out}" for v, name, u, out in links)
        issues.append(Issue("cycle", f"the graph has a cycle: {text}", links[0][0], links[0][1]))
    return issues


def build_plan(
    graph: Graph,
    settings: Settings | None = None,
    *,
    device: str | None = None,
    only: list[str] | None = None,
    available: dict[str, set[str]] | None = None,
    probe: bool = True,
) -> Plan:
    """Validate `graph` and return the plan for the requested outputs. Every node in the
    graph is checked, not only those the outputs need, and every problem is reported.

    device: the --device override of the graph default. only: target node ids (default:
    every output node). available: {framework: devices} to fake device probing in tests.
    probe: False to check devices without loading frameworks unless a node asks for a GPU
    (`nodeflow validate`).
    """
    settings = settings or Settings()
    registry = load_nodes()
    issues: list[Issue] = []
    planned: dict[str, PlannedNode] = {}
    inputs_ok: set[str] = set()
    for nid, spec in graph.nodes.items():
        if isinstance(spec.type, Refused):
            continue  # its structure was reported by parse_graph
        cls = registry.get(spec.type)
        if cls is None:
            issues.append(Issue("unknown_type", f"unknown node type {shown(spec.type)} (see `nodeflow nodes`)", nid))
            continue
        before = len(issues)
        planned[nid] = _check_node(nid, spec.inputs, cls, graph, registry, issues)
        if len(issues) == before:
            inputs_ok.add(nid)

    links = _link_graph(planned)
    issues.extend(_cycle_issues(links))

    if only:
        for nid in only:
            if nid not in graph.nodes:
                issues.append(Issue("unknown_node", f"--only {shown(nid)}: there is no such node", nid))
        targets = list(only)
    else:
        targets = [nid for nid, p in planned.items() if p.cls.output_node]
        if not targets and planned:
            issues.append(Issue("no_output", "the graph has no output node (such as Save), so nothing would run"))
    if not graph.nodes:
        issues.append(Issue("empty_graph", "the graph has no nodes"))

    problem = device is not None and devices.name_problem(device)
    if problem:
        issues.append(Issue("invalid_device", f"--device: {problem}"))
        device = None
    import networkx as nx

    file_order = {nid: i for i, nid in enumerate(planned)}
    acyclic = not any(i.code == "cycle" for i in issues)
    every = list(nx.lexicographical_topological_sort(links, key=file_order.get)) if acyclic else list(planned)
    bound = Plan(graph, {n: planned[n] for n in every}, targets, settings)
    # `available` given: the caller says which frameworks (and devices) there are.
    issues.extend(bind_frameworks(bound, check_installed=available is None))
    # A node whose framework is not installed was reported once; its own checks may need it.
    unavailable = missing_framework_nodes(bound) if available is None else set()
    _place(planned, graph, device, available, probe, issues)
    _check_environment({n: p for n, p in planned.items() if n in inputs_ok}, settings, issues, unavailable)
    if issues:
        raise GraphInvalid(issues)

    needed = set(targets).union(*(nx.ancestors(links, t) for t in targets))
    order = list(nx.lexicographical_topological_sort(links.subgraph(needed), key=file_order.get))
    plan = Plan(graph, {n: planned[n] for n in order}, targets, settings)
    _key(plan)
    return plan


def _place(
    planned: dict[str, PlannedNode],
    graph: Graph,
    override: str | None,
    available: dict | None,
    probe: bool,
    issues: list[Issue],
) -> None:
    """Without `probe`, frameworks are probed only for a node that asks for a GPU by name;
    otherwise what the node supports is assumed (a check, not a placement)."""
    for nid, p in planned.items():
        pinned = graph.nodes[nid].device
        requested = pinned or override or graph.defaults.device
        if devices.name_problem(requested):
            continue  # reported by parse_graph
        if not probe and available is None and requested in ("auto", "cpu"):
            seen = set(p.cls.devices) | {"cpu"}
        else:
            seen = {"cpu"}
            for fw in [p.framework] if p.framework else []:
                seen |= devices.probe(fw) if available is None else available.get(fw, {"cpu"})
        try:
            placement = devices.resolve(requested, p.cls.devices, seen, pinned=bool(pinned))
        except devices.DeviceError as exc:
            issues.append(Issue("invalid_device", str(exc), nid, "device"))
            continue
        p.device, p.placement_note = placement.device, placement.note


def _node_check(p: PlannedNode, nid: str, issues: list[Issue], call: Callable[..., Any], *args: Any) -> Any:
    """Run one of a node's own checks (check, fingerprint, check_framework) on its literals.
    Whatever the graph, a correct node's check ends in an issue, never in an exception: an
    input the check expects as a value but the graph links (from any node, even one of unknown
    type, or with a malformed link) is an invalid_link. A KeyError for an input the graph
    doesn't link is the node's own bug, and is raised."""
    try:
        return call(*args)
    except InputError as exc:
        issues.append(Issue("invalid_input", exc.message, nid, exc.input))
    except KeyError as exc:  # the node checks an input before the run that the graph links
        name = exc.args[0] if exc.args else None
        if isinstance(name, str) and name in p.linked:
            issues.append(
                Issue(
                    "invalid_link",
                    f"{p.cls.type} checks {shown(name)} before running (a file, "
                    "a model): give it as a value, not a link",
                    nid,
                    name,
                )
            )
        else:
            raise  # the node's own bug (it reads an input it doesn't have): not hidden as the graph's
    except (OSError, ValueError) as exc:  # a path the file system refuses, found by a node's own check
        reason = getattr(exc, "strerror", None) or exc.__class__.__name__
        issues.append(Issue("invalid_input", f"{p.cls.type} can't use its inputs: {reason}", nid))
    return None


def _check_environment(
    planned: dict[str, PlannedNode],
    settings: Settings,
    issues: list[Issue],
    unavailable: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Each node's own checks against the environment (files exist, names are usable), in file
    order. A node in `unavailable` (its framework is not installed: already reported) is checked
    as far as its checks go without that framework."""
    for nid, p in planned.items():
        before = len(issues)
        try:
            _node_check(p, nid, issues, p.cls.check, dict(p.literals), settings)
            if len(issues) == before:
                p.extra = _node_check(p, nid, issues, p.cls.fingerprint, dict(p.literals), settings)
        except ImportError:
            if nid not in unavailable:
                raise


def _key(plan: Plan) -> None:
    for p in plan.nodes.values():
        seed = p.literals.get(p.cls.seed_input) if p.cls.seed_input else None
        seeded = p.cls.seed_input in p.links or seed is not None
        p.stable = (p.cls.deterministic or seeded) and all(plan.nodes[link.node].stable for link in p.links.values())
        # The device is part of the key: fp16 on CUDA and fp32 on the CPU give different pixels.
        parts: dict[str, Any] = {
            "type": p.cls.type,
            "version": p.cls.version,
            "device": p.device,
            "extra": p.extra,
            "literals": p.literals,
            "links": {k: [plan.nodes[link.node].key, link.output] for k, link in sorted(p.links.items())},
        }
        if not p.stable:
            parts["nonce"] = uuid.uuid4().hex
        try:
            p.key = digest(parts)
        except Unhashable:
            p.stable = False
            parts["literals"] = {k: repr(v) for k, v in p.literals.items()}
            parts["extra"] = repr(p.extra)  # a fingerprint may be what can't be hashed
            parts["nonce"] = uuid.uuid4().hex
            p.key = digest(parts)
