"""Port types that cross families: the optimizers (nst) write a loss history that
PlotLoss (image) draws. Plain lists: cacheable."""

from __future__ import annotations

from nodeflow.types import port_type

LOSS_HISTORY = port_type("LOSS_HISTORY", "loss per step: {total, terms: {name: [...]}, seconds, size}")
