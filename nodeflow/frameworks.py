"""Which framework each planned node runs on, decided before anything runs.

A node with a `framework_input` runs on the framework that literal names; a node that takes
framework-bound values (PortType.framework_bound: models, tensors) runs on theirs; any other
node on the first of its `frameworks`. A node whose inputs bring two frameworks, or one it
does not support, is a validation error naming the input; so is a framework that is not
installed (naming the node's extra). Frameworks never load here.
"""

from __future__ import annotations

from .devices import installed
from .errors import Issue


def bind_frameworks(plan, check_installed: bool = True) -> list[Issue]:
    """Set `framework` on every node of `plan` (in execution order); return the issues.
    `check_installed`: a framework that is not installed is an issue (naming the node's extra)."""
    issues: list[Issue] = []
    missing: dict[str, list[str]] = {}
    from .plan import _node_check  # the planner's own guard (plan.py imports this module)

    for nid, p in plan.nodes.items():
        cls = p.cls
        if cls.framework_input and p.literals.get(cls.framework_input):
            p.framework = p.literals[cls.framework_input]
        else:
            links = [(name, p.links[name]) for name in cls.input_specs if name in p.links]
            brought = {
                name: plan.nodes[link.node].framework
                for name, link in links
                if plan.nodes[link.node].framework
                and plan.nodes[link.node].cls.output_specs[link.output].port.framework_bound
            }
            first = next(iter(brought), None)
            clash = next((name for name, fw in brought.items() if fw != brought[first]), None)
            if clash:
                issues.append(
                    Issue(
                        "mixed_frameworks",
                        (
                            f"this input brings a {brought[clash]} value (from '{p.links[clash].node}') but "
                            f"{first} brings a {brought[first]} one (from '{p.links[first].node}'): a {cls.type} "
                            f"runs on one framework, so everything it takes must come from the same one"
                        ),
                        nid,
                        clash,
                    )
                )
                continue
            if first and brought[first] not in cls.frameworks:
                issues.append(
                    Issue(
                        "unsupported_framework",
                        (
                            f"this input brings a {brought[first]} value (from '{p.links[first].node}'), "
                            f"but {cls.type} runs on {', '.join(cls.frameworks)} only"
                        ),
                        nid,
                        first,
                    )
                )
                continue
            p.framework = brought[first] if first else (cls.frameworks[0] if cls.frameworks else None)
        before = len(issues)
        _node_check(p, nid, issues, cls.check_framework, p.framework, dict(p.literals))
        if len(issues) > before:
            continue
        if check_installed and p.framework and not installed(p.framework):
            missing.setdefault(p.framework, []).append(nid)
    for framework, nids in missing.items():  # once per framework, at the first node on it
        cls = plan.nodes[nids[0]].cls
        extra = cls.family()[1]
        how = f"pip install 'nodeflow[{extra}]'" if extra else f"install {framework}"
        issues.append(
            Issue(
                "framework_missing",
                f"{cls.type} runs on {framework}, which is not installed here: {how}",
                nids[0],
            )
        )
    return issues


def missing_framework_nodes(plan) -> set[str]:
    """The nodes of a framework-bound `plan` whose framework is not installed."""
    return {nid for nid, p in plan.nodes.items() if p.framework and not installed(p.framework)}
