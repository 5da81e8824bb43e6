"""Stable Diffusion img2img via diffusers. Needs nodeflow[sd]."""

# The pip extra this family needs.
EXTRA: str | None = "sd"
