"""The style-transfer port types: a frozen VGG extractor and a loss term bound to one.
Neither enters the value caches: they hold models and tensors. Both are bound to their
framework (torch or TensorFlow): a node taking them runs on it."""

from __future__ import annotations

import nodes._shared.tf_device  # noqa: F401  (registers TensorFlow's device probe)
from nodeflow.types import port_type
from nodes._shared.torch_device import move

VGG_PORT = port_type(
    "VGG",
    "a frozen VGG feature extractor and the weights it came from",
    persist=False,
    memory_cache=False,
    to_device=move,
    framework_bound=True,
)
LOSS = port_type(
    "LOSS",
    "a weighted loss term bound to its extractor and targets",
    persist=False,
    memory_cache=False,
    to_device=move,
    framework_bound=True,
)
