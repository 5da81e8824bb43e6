"""A cheap preview of SD latents, for progress frames."""

from __future__ import annotations

from typing import Any

# SD v1.x latent -> RGB, a linear fit (as ComfyUI's latent previews use): a cheap preview.
LATENT_RGB = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]


def latent_preview(latents: Any):
    """Approximate RGB (IMAGE, at latent resolution) from 4-channel SD latents."""
    import torch

    lat = latents[0].detach().float().cpu()
    rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(LATENT_RGB))
    return ((rgb + 1) / 2).clamp(0, 1).contiguous().numpy()
