"""Stable Diffusion img2img via diffusers. Needs nodeflow[sd]."""
