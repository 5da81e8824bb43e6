"""Parameter sweeps: `--sweep NODE.INPUT=v1,v2,v3` (repeatable) runs the cross product.

Every variation is an ordinary set of overrides, validated by the normal planner and
run by the normal executor, so upstream work that no swept input touches runs once
(the cache serves it to the other variations). Each variation's output files carry
its values in their names (edges__sobel.normalize=max.png) and in their PNG metadata.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from nodeflow.context import Settings
from nodeflow.errors import GraphInvalid, Issue

DEFAULT_LIMIT = 64
METADATA_KEY = "nodeflow:sweep"
# Characters kept in file names as they are; anything else becomes "-".
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")
MAX_TAG_VALUE = 40


@dataclass(frozen=True)
class Axis:
    node: str
    input: str
    values: tuple

    @property
    def target(self) -> str:
        return f"{self.node}.{self.input}"


@dataclass(frozen=True)
class Variation:
    index: int
    values: dict[str, Any]  # {"node.input": value}, in axis order

    @property
    def tag(self) -> str:
        """The file-name suffix: __node.input=value per swept input, safe characters only."""
        return "".join(f"__{t}={value_label(v)}" for t, v in self.values.items())

    def settings(self, base: Settings) -> Settings:
        return tag_settings(base, self.values)


def value_label(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return _UNSAFE.sub("-", text)[:MAX_TAG_VALUE] or "-"


def tag_settings(base: Settings, values: dict[str, Any] | None) -> Settings:
    """Settings whose output files carry a variation's values (name suffix and PNG text)."""
    if not values:
        return base
    variation = Variation(0, dict(values))
    return replace(
        base, output_suffix=variation.tag, output_metadata={**base.output_metadata, METADATA_KEY: json.dumps(values)}
    )


def _parse_values(raw: str) -> list[Any]:
    """A JSON list, or comma-separated items (each JSON if it parses, else text, like --set)."""
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, list):
            return parsed
    except json.JSONDecodeError:
        pass
    out = []
    for item in raw.split(","):
        item = item.strip()
        try:
            out.append(json.loads(item))
        except json.JSONDecodeError:
            out.append(item)
    return out


def parse_specs(specs: list[str]) -> tuple[list[Axis], list[Issue]]:
    """`NODE.INPUT=v1,v2` strings (the CLI) -> the axes, and the problems found."""
    pairs, issues = [], []
    for spec in specs:
        target, eq, raw = spec.partition("=")
        if not eq or not raw.strip():
            issues.append(Issue("invalid_sweep", f"--sweep {spec!r}: expected NODE.INPUT=v1,v2,..."))
            continue
        pairs.append((target, _parse_values(raw)))
    return _axes(pairs, issues), issues


def axes_from_mapping(sweep: dict[str, Any]) -> tuple[list[Axis], list[Issue]]:
    """{"node.input": [v1, v2]} (the HTTP API) -> the axes, and the problems found."""
    issues: list[Issue] = []
    pairs = []
    for target, values in sweep.items():
        if not isinstance(values, list):
            node, _, inp = target.partition(".")
            issues.append(Issue("invalid_sweep", f"sweep {target!r}: give a list of values", node or None, inp or None))
            continue
        pairs.append((target, values))
    return _axes(pairs, issues), issues


def _axes(pairs: list[tuple[str, list]], issues: list[Issue]) -> list[Axis]:
    axes, seen = [], set()
    for target, values in pairs:
        node, sep, inp = target.partition(".")
        if not sep or not node or not inp:
            issues.append(Issue("invalid_sweep", f"sweep {target!r}: name the input as NODE.INPUT"))
            continue
        if target in seen:
            issues.append(Issue("invalid_sweep", f"{target} is swept twice: give its values once", node, inp))
            continue
        seen.add(target)
        if not values:
            issues.append(Issue("invalid_sweep", f"sweep {target}: no values", node, inp))
            continue
        labels = [value_label(v) for v in values]
        dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
        if dupes:
            issues.append(
                Issue(
                    "invalid_sweep",
                    f"sweep {target}: values repeat or give the same file name ({', '.join(dupes)})",
                    node,
                    inp,
                )
            )
            continue
        axes.append(Axis(node, inp, tuple(values)))
    return axes


def variations(axes: list[Axis]) -> list[Variation]:
    """The cross product, the last axis varying fastest (row-major for the contact sheet)."""
    combos = itertools.product(*(a.values for a in axes))
    return [Variation(i, {a.target: v for a, v in zip(axes, combo, strict=False)}) for i, combo in enumerate(combos)]


def plan_sweep(
    parsed: tuple[list[Axis], list[Issue]], build: Callable[[Variation], Any], limit: int = DEFAULT_LIMIT
) -> list[tuple[Variation, Any]]:
    """Validate every swept value through `build` (variation -> plan, raising GraphInvalid)
    and return each variation with its plan. Every problem is reported at once (with those
    `parsed` found): each value is checked on its own first, so bad values and a product
    over the limit show together. Raises GraphInvalid."""
    axes, issues = parsed[0], list(parsed[1])
    size = 1
    for a in axes:
        size *= len(a.values)
    if size > limit and axes:
        widest = max(axes, key=lambda a: len(a.values))
        issues.append(
            Issue(
                "sweep_too_large",
                f"the sweep has {size} variations "
                f"({' x '.join(str(len(a.values)) for a in axes)}), over the limit of {limit}",
                widest.node,
                widest.input,
            )
        )
    for a in axes:  # one input at a time, so one bad axis doesn't hide another's problems
        for v in a.values:
            _collect(issues, build, Variation(-1, {a.target: v}))
    if issues:
        raise GraphInvalid(issues)
    planned: list[Any] = []
    for var in variations(axes):
        _collect(issues, build, var, planned)
    if issues:
        raise GraphInvalid(issues)
    return planned


def _collect(issues: list[Issue], build: Callable, var: Variation, planned: list | None = None) -> None:
    try:
        plan = build(var)
    except GraphInvalid as exc:
        for issue in exc.issues:
            if issue not in issues:
                issues.append(issue)
        return
    if planned is not None:
        planned.append((var, plan))
