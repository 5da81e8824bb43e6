"""The optimizers' schedules: coarse-to-fine stages (image size and steps of each) and the
learning rate within a stage."""

from __future__ import annotations

import math


def parse_schedule(text: str, full: tuple[int, int], steps: int) -> list[tuple[tuple[int, int], int]]:
    """'128:150,256:100,full:40' -> [((h, w), steps), ...]; sides are the longest side.
    Empty text means one stage at full size with `steps`."""
    if not text.strip():
        return [(full, steps)]
    stages = []
    for part in text.split(","):
        side, _, n = part.strip().partition(":")
        if not n:
            raise ValueError(f"{part!r}: expected SIDE:STEPS, e.g. 256:100")
        side_px = max(full) if side.strip() == "full" else int(side)
        scale = min(1.0, side_px / max(full))
        stages.append(((max(8, round(full[0] * scale)), max(8, round(full[1] * scale))), int(n)))
    return stages


def lr_at(schedule: str, lr: float, i: int, n: int) -> float:
    """constant, or cosine decay to 10% over the stage."""
    if schedule == "cosine" and n > 1:
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / (n - 1))))
    return lr
