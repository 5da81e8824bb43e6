"""Which precision the VGG convolutions run in. bfloat16 is about 2x faster than float32 where
the hardware has it (CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX), and emulated, about
100x slower, where it doesn't (measured here: a 64-channel 128 px conv took 0.068 s in float32
and 7.5 s in bfloat16 on an AVX2-only CPU). `auto` picks bfloat16 only where it is fast."""

from __future__ import annotations

import functools


@functools.cache
def fast_bfloat16(device: str) -> bool:
    import torch

    kind = device.split(":")[0]
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a private probe: absent means unknown, so not fast
            return False
    return False


def resolve_precision(precision: str, device: str) -> tuple[str, str]:
    """(the precision to run, a log line or ""). An explicit bfloat16 is honoured, with a
    warning where it is emulated."""
    if precision == "auto":
        return ("bfloat16", "") if fast_bfloat16(device) else ("float32", "")
    if precision == "bfloat16" and not fast_bfloat16(device):
        return precision, (
            f"warning: {device} has no fast bfloat16 (no AVX512-BF16/AMX or bf16 GPU): "
            "bfloat16 convolutions are emulated and far slower; use precision auto or float32"
        )
    return precision, ""
