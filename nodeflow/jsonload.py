"""Strict JSON for graphs, overrides and request bodies.

Python's json module quietly keeps the last of two equal keys, turns NaN and Infinity
(and 1e999) into floats, builds strings with lone surrogates (that fail later, when
written), and raises bare ValueError or RecursionError for integers longer than the
int-string limit and for nesting deeper than the interpreter's recursion limit. Here
each of those is a problem located by its path in the document, so a graph's can be
reported by node and input; the value is replaced so later checks don't repeat it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import shown

# Deeper than any graph needs, and far below the recursion limit of what reads values later
# (pydantic, hashing, pickling).
MAX_DEPTH = 64
MAX_INT_DIGITS = 4300  # Python's default int-string limit (sys.get_int_max_str_digits())
MAX_INT_BITS = int(MAX_INT_DIGITS * 3.3219)  # the same, for integers that come parsed (an HTTP body)

Path = tuple  # of str keys and int indexes


@dataclass(frozen=True)
class Refused:
    """Stands in for a value that was reported (NaN, an over-long integer, a too-deep
    subtree), so that no later check reports it again."""

    code: str
    message: str

    def __repr__(self) -> str:
        return f"<{self.code}>"


def _non_finite(text: str) -> Refused:
    return Refused(
        "not_finite", f"{shown(text, 40)} is not allowed: numbers must be finite (NaN and Infinity are not JSON)"
    )


TOO_DEEP = Refused("too_deep", f"nesting is deeper than {MAX_DEPTH} levels")


@dataclass(frozen=True)
class Problem:
    path: Path
    code: str
    message: str


class _Pairs(dict):
    """An object that had a key more than once: the repeated keys, and the values the last
    one replaced (the walk reports their problems too, then drops them)."""

    repeated: list[str]
    replaced: list[tuple[str, Any]]


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    replaced = []
    for k, v in pairs:
        if k in seen:
            replaced.append((k, seen[k]))
        seen[k] = v
    if not replaced:
        return seen
    out = _Pairs(seen)
    out.repeated = list(dict.fromkeys(k for k, _ in replaced))
    out.replaced = replaced
    return out


def _int(text: str) -> Any:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return Refused("int_too_long", f"an integer of {digits} digits is too long (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _non_finite(text)


def loads(text: str | bytes) -> tuple[Any, list[Problem]]:
    """(value, problems). Raises json.JSONDecodeError for text that is not JSON at all."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")  # UnicodeDecodeError is a ValueError, like JSONDecodeError
    try:
        data = json.loads(
            text, object_pairs_hook=_pairs, parse_int=_int, parse_float=_float, parse_constant=_non_finite
        )
    except RecursionError:  # deeper than the interpreter's limit: found by a scan instead
        return TOO_DEEP, [Problem((), TOO_DEEP.code, f"{TOO_DEEP.message}{_deep_at(text)}")]
    return clean(data)


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _deep_at(text: str) -> str:
    """' (at line L, column C)': where the nesting first goes past MAX_DEPTH."""
    depth = 0
    for m in _TOKENS.finditer(text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, m.start()) + 1
                column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                return f" (at line {line}, column {column})"
        elif tok in "]}":
            depth -= 1
    return ""


def clean(data: Any) -> tuple[Any, list[Problem]]:
    """Walk a parsed value (without recursion): report and replace what JSON can't carry
    faithfully, including in data parsed elsewhere (lone surrogates, non-finite floats)."""
    problems: list[Problem] = []
    root = [data]
    # (container, key in container, path, depth)
    stack: list[tuple[Any, Any, Path, int]] = [(root, 0, (), 0)]
    while stack:
        parent, key, path, depth = stack.pop()
        value = parent[key]
        if isinstance(value, Refused):
            problems.append(Problem(path, value.code, value.message))
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            parent[key] = Refused(
                "int_too_long",
                f"an integer of about {int(value.bit_length() * 0.30103)} digits "
                f"is too long (at most {MAX_INT_DIGITS})",
            )
            problems.append(Problem(path, parent[key].code, parent[key].message))
        elif isinstance(value, float) and not math.isfinite(value):
            parent[key] = _non_finite(str(value))
            problems.append(Problem(path, parent[key].code, parent[key].message))
        elif isinstance(value, str):
            parent[key] = _clean_text(value, path, problems)
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                problems.append(Problem(path, TOO_DEEP.code, TOO_DEEP.message))
                parent[key] = TOO_DEEP
                continue
            if isinstance(value, dict):
                for k in getattr(value, "repeated", ()):
                    problems.append(
                        Problem(
                            path + (k,),
                            "duplicate_key",
                            f"the key {shown(k, 80)} is given more than once in one object (only one is allowed)",
                        )
                    )
                for k, v in getattr(value, "replaced", ()):
                    stack.append(([v], 0, path + (k,), depth + 1))  # checked, then dropped
                fixed = {_clean_text(k, path + (k,), problems): v for k, v in value.items()}
                if type(value) is not dict or any(a != b for a, b in zip(fixed, value, strict=False)):
                    value = parent[key] = fixed
                stack.extend((value, k, path + (k,), depth + 1) for k in reversed(list(value)))
            else:
                stack.extend((value, i, path + (i,), depth + 1) for i in reversed(range(len(value))))
    return root[0], problems


def _clean_text(text: str, path: Path, problems: list[Problem]) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        problems.append(
            Problem(
                path,
                "invalid_text",
                "the text holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not valid Unicode",
            )
        )
        return text.encode("utf-8", "replace").decode("utf-8")


def path_text(path: Path) -> str:
    """nodes.load.inputs.size[0]; a very deep path keeps its ends."""
    parts = [f"[{p}]" if isinstance(p, int) else "." + shown(p, 60).strip("'\"") for p in path]
    if len(parts) > 10:
        parts = parts[:6] + [f"...({len(parts) - 8} more)..."] + parts[-2:]
    return "".join(parts).lstrip(".") or "(top level)"


def graph_location(path: Path) -> tuple[str | None, str | None]:
    """(node, input) for a path inside a graph: nodes.ID[.inputs.NAME ...]."""
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], str):
        if len(path) >= 4 and path[2] == "inputs" and isinstance(path[3], str):
            return path[1], path[3]
        if len(path) >= 3 and path[2] == "device":
            return path[1], "device"
        return path[1], None
    return None, None
