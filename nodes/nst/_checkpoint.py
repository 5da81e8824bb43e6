"""How the optimizers' checkpoints are written: torch routes with torch.save (loaded back with
weights_only, so a checkpoint holds tensors and plain values only), the TensorFlow route as an
.npz of arrays plus JSON. Each names its route: a checkpoint of another route is ignored."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

FORMAT = 1


def torch_dump(route: str, state: dict[str, Any]) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"format": FORMAT, "route": route, **state}, buf)
    return buf.getvalue()


def torch_load(route: str, data: bytes | None, device: str) -> dict[str, Any] | None:
    """The state saved by torch_dump for this route, its tensors on `device`; None if there is none."""
    if not data:
        return None
    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception:  # a torn or foreign file: start afresh
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("route") != route:
        return None
    return state


def npz_dump(route: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    header = json.dumps({"format": FORMAT, "route": route, **meta})
    np.savez(buf, __meta__=np.frombuffer(header.encode(), dtype=np.uint8), **arrays)
    return buf.getvalue()


def npz_load(route: str, data: bytes | None) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    if not data:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
    except Exception:
        return None
    if meta.get("format") != FORMAT or meta.get("route") != route:
        return None
    return meta, arrays
