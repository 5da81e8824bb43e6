"""The node reference (docs/nodes/) is generated from the node schemas: a node whose
description, inputs or outputs changed without `python scripts/node_reference.py` fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("node_reference", ROOT / "scripts" / "node_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_node_reference_is_current():
    gen = _generator()
    problems = gen.stale(gen.render())
    assert not problems, "the node reference is stale: run `python scripts/node_reference.py`\n" + "\n".join(problems)


def test_every_node_page_names_its_family_extra_and_every_input():
    from nodeflow.registry import load_nodes

    pages = _generator().render()
    for name, cls in load_nodes().items():
        if not cls.__module__.startswith("nodes."):
            continue
        page = pages[f"{name}.md"]
        family, extra = cls.family()
        assert f"[{family}](index.md#{family})" in page, name
        assert (f'".[{extra}]"' if extra else "the base install") in page, name
        for inp in cls.input_specs:
            assert f"| `{inp}` |" in page, (name, inp)
        assert f"[{name}]({name}.md)" in pages["index.md"], name
