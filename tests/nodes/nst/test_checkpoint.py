"""Checkpoints of the optimizers: a run stopped part-way resumes from its last checkpoint, on
torch (Adam, L-BFGS with an Adam finish) and TensorFlow (Adam), and ends where an
uninterrupted run ends."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from support.nst_graphs import tiny  # noqa: E402

from nodeflow import events as ev  # noqa: E402
from nodeflow.context import CancelToken, Checkpoints, Settings  # noqa: E402
from nodeflow.executor import Executor  # noqa: E402
from nodeflow.graph import parse_graph  # noqa: E402
from nodeflow.plan import build_plan  # noqa: E402


@pytest.fixture(autouse=True)
def offline_vgg19(monkeypatch, tmp_path):
    monkeypatch.setenv("NODEFLOW_VGG19_URL", "http://127.0.0.1:9/vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


def run(graph: dict, root=None, stop_at: int | None = None, interval: float = 0.0):
    """Run `opt` with checkpoints under root (None: none); cancel after step stop_at.
    Returns (result, the plan's key of opt, the last progress value seen)."""
    settings = Settings(checkpoints=Checkpoints(root, interval) if root is not None else None)
    plan = build_plan(parse_graph(graph), settings, only=["opt"])
    token, seen = CancelToken(), []

    def on(e):
        if isinstance(e, ev.NodeProgress) and e.node == "opt":
            seen.append(e.value)
            if stop_at is not None and e.value >= stop_at:
                token.cancel()

    result = Executor().run(plan, emit=on, cancel=token)
    return result, plan.nodes["opt"].key, seen


def framework_graph(framework: str, **inputs) -> dict:
    g = tiny(**inputs)
    g["nodes"]["vgg"]["inputs"]["framework"] = framework
    return g


CASES = {
    # Two stages (the checkpoint falls in the second), a cosine lr and the proximal TV step.
    "adam-torch": (
        "torch",
        dict(steps=10, schedule="24:5,full:7", lr_schedule="cosine", tv="proximal", preview_every=0),
        9,
    ),
    "adam-tensorflow": ("tensorflow", dict(steps=10, schedule="24:4,full:6", preview_every=0), 7),
    "lbfgs-torch": (
        "torch",
        dict(optimizer="LBFGSOptimize", steps=12, adam_steps=4, preview_every=0),
        14,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stopped_run_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(case, tmp_path):
    framework, inputs, stop_at = CASES[case]
    if framework == "tensorflow":
        pytest.importorskip("tensorflow")
    graph = framework_graph(framework, **inputs)
    plain, _, plain_steps = run(graph)
    assert plain.status == "succeeded", plain.error

    root = tmp_path / "ckpt"
    stopped, key, seen = run(graph, root, stop_at=stop_at)
    assert stopped.status == "cancelled" and seen[-1] == stop_at
    files = sorted(p.name for p in root.iterdir())
    assert files == [f"{key}.ckpt"]  # one file, named by the node's cache key; no temp file left

    resumed, key2, seen2 = run(graph, root)
    assert resumed.status == "succeeded", resumed.error and key2 == key
    info = json.loads(resumed.values["opt"]["info"])
    assert info["resumed_from_step"] == stop_at
    assert seen2[0] == stop_at + 1 and seen2[-1] == plain_steps[-1]  # no step done twice
    h, h0 = resumed.values["opt"]["history"], plain.values["opt"]["history"]
    assert len(h["total"]) == len(h0["total"])
    a, b = resumed.values["opt"]["image"], plain.values["opt"]["image"]
    if case == "lbfgs-torch":
        # L-BFGS restarts its curvature history at the checkpoint: the same objective within 10%.
        assert h["total"][-1] == pytest.approx(h0["total"][-1], rel=0.10)
    else:
        # Adam's whole state is saved: the same pixels, to float rounding.
        assert np.abs(np.asarray(a) - np.asarray(b)).max() < 1e-4
        assert h["total"][-1] == pytest.approx(h0["total"][-1], rel=1e-4)


def test_a_checkpoint_serves_only_its_own_node_key(tmp_path):
    root = tmp_path / "ckpt"
    graph = framework_graph("torch", steps=8, preview_every=0)
    stopped, key, _ = run(graph, root, stop_at=5)
    assert stopped.status == "cancelled" and (root / f"{key}.ckpt").is_file()
    other = framework_graph("torch", steps=8, preview_every=0, lr=0.03)  # another graph: another key
    result, key2, seen = run(other, root)
    assert key2 != key and result.status == "succeeded"
    assert json.loads(result.values["opt"]["info"])["resumed_from_step"] is None and seen[0] == 1


def test_checkpoints_are_saved_at_most_every_interval(tmp_path, monkeypatch):
    from nodes.nst import _run_record

    now = [0.0]
    monkeypatch.setattr(_run_record, "clock", lambda: now[0])
    root = tmp_path / "ckpt"
    settings = Settings(checkpoints=Checkpoints(root, 30.0))
    plan = build_plan(parse_graph(framework_graph("torch", steps=9, preview_every=0)), settings, only=["opt"])

    def on(e):  # each step takes 10 s of the fake clock
        if isinstance(e, ev.NodeProgress) and e.node == "opt":
            now[0] += 10.0

    result = Executor().run(plan, emit=on)
    assert result.status == "succeeded"
    # 9 steps of 10 s: saved after steps 3 and 6 (step 9 is the last: nothing left to resume)
    assert json.loads(result.values["opt"]["info"])["checkpoints_saved"] == 2
