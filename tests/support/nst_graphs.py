"""Tiny style-transfer graphs on the real offline VGG16 weights, and a runner that keeps
the events: shared by the torch, TensorFlow and TV-proximal tests (tests/nodes/nst)."""

from __future__ import annotations

from nodeflow.context import CancelToken
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan


def tiny(optimizer: str = "AdamOptimize", framework: str | None = None, vgg: dict | None = None, **opt_inputs) -> dict:
    """Astronaut restyled as Starry Night at 48 px: VGG16 (on `framework`, or as `vgg` says), style,
    content and TV losses, the optimizer (with `opt_inputs`), and a Save that keeps the run's info."""
    vgg = vgg or {"model": "vgg16", **({"framework": framework} if framework else {})}
    L = lambda ref: {"from": ref}
    return {
        "nodes": {
            "content": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 48}},
            "style": {"type": "LoadImage", "inputs": {"path": "starry_night.jpg", "max_size": 48}},
            "vgg": {"type": "VGGFeatures", "inputs": vgg},
            "style_loss": {"type": "StyleLoss", "inputs": {"vgg": L("vgg.vgg"), "style": L("style.image")}},
            "content_loss": {"type": "ContentLoss", "inputs": {"vgg": L("vgg.vgg"), "content": L("content.image")}},
            "tv_loss": {"type": "TVLoss"},
            "opt": {
                "type": optimizer,
                "inputs": dict(
                    {
                        "image": L("content.image"),
                        "loss1": L("style_loss.loss"),
                        "loss2": L("content_loss.loss"),
                        "loss3": L("tv_loss.loss"),
                    },
                    **opt_inputs,
                ),
            },
            "save": {
                "type": "Save",
                "inputs": {"image": L("opt.image"), "filename": "r.png", "metadata": L("opt.info")},
            },
        }
    }


def run(graph: dict, executor: Executor | None = None, cancel: CancelToken | None = None, emit=None):
    """Run the graph's `opt` and `save`; returns (RunResult, the events in order)."""
    events = []

    def on(e):
        events.append(e)
        if emit:
            emit(e)

    plan = build_plan(parse_graph(graph), only=["save", "opt"])
    result = (executor or Executor()).run(plan, emit=on, cancel=cancel)
    return result, events


def history(result):
    """The optimizer's recorded objective (total and per term) of a run."""
    return result.values["opt"]["history"]
