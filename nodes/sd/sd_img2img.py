"""SDImg2Img: restyle an image with Stable Diffusion (v1.5 by default) img2img, via diffusers."""

from __future__ import annotations

from typing import Any, Literal

import nodes._shared.torch_device  # noqa: F401  (registers the torch device probe)
from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

from ._pipeline import SCHEDULERS
from ._source import DEFAULT_MODEL

SchedulerName = Literal[tuple(SCHEDULERS)]  # type: ignore[valid-type]
VAE_STRIDE = 8  # SD's VAE works on multiples of 8 pixels


class SDImg2Img(Node):
    """Restyle an image with Stable Diffusion img2img (v1.5 by default, via diffusers).
    The image is noised by `strength`, then denoised towards the prompt. Following
    diffusers, the steps actually run are int(steps x strength); PNDM, SD v1.5's own
    scheduler, adds one warm-up step. The output is the input size rounded down to a
    multiple of 8.

    The same seed gives the same image on every device (the noise comes from a CPU
    generator), so a seeded node is cached; seed null draws a fresh one each run.
    The model is loaded once per process and kept (see NODEFLOW_SD_MAX_MODELS): changing
    the prompt or strength reuses it. A Hugging Face repo id downloads on first use
    (about 2 GB in fp16 for SD v1.5) into the standard HF cache; offline, point `model`
    at a local diffusers folder or a .safetensors checkpoint. No safety checker is run."""

    version = "1"
    category = "generate/stable diffusion"
    deterministic = False
    seed_input = "seed"
    frameworks = ("torch",)
    devices = ("cuda", "mps", "cpu")

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="base image to restyle")
        prompt: str = Input(description="what the result should look like, e.g. 'Van Gogh style'")
        negative_prompt: str = Input("", description="what it should not look like")
        strength: float = Input(
            0.75,
            gt=0,
            le=1,
            description="how much to change: 0 keeps the image, 1 ignores it. Steps run = int(steps x strength)",
        )
        guidance_scale: float = Input(
            7.5,
            ge=0,
            le=50,
            description="how strongly to follow the prompt (classifier-free guidance; 1 or less turns it off)",
        )
        steps: int = Input(50, ge=1, le=1000, description="denoising steps for strength 1")
        seed: int | None = Input(0, ge=0, le=2**63 - 1, description="noise seed; null: a new one each run")
        scheduler: SchedulerName = Input(
            "default",
            description="sampler: default (the model's own, PNDM "
            "for SD v1.5), pndm, ddim, euler, euler_ancestral ('Euler a'), "
            "dpmpp_2m ('DPM++ 2M'), dpmpp_2m_karras",
        )
        model: str = Input(
            DEFAULT_MODEL,
            min_length=1,
            names_file=True,
            description="Hugging Face repo id, or a local "
            "diffusers folder or .safetensors checkpoint (relative to the input directory)",
        )
        config: str | None = Input(
            None,
            names_file=True,
            description="single-file checkpoints only: a diffusers folder or "
            "repo id with the model's configs (default: inferred, from the Hub once)",
        )
        dtype: Literal["auto", "fp16", "bf16", "fp32"] = Input(
            "auto", description="auto: fp16 on CUDA, fp32 on the CPU and MPS"
        )
        attention_slicing: bool = Input(False, description="compute attention in slices: less memory, a little slower")
        cpu_offload: bool = Input(
            False, description="CUDA only: keep each sub-model on the CPU until it runs (small GPUs; slower)"
        )
        preview_every: int = Input(0, ge=0, le=1000, description="send a preview every N steps; 0: none")
        preview: Literal["fast", "vae"] = Input(
            "fast", description="fast: linear approximation of the latents; vae: full decode (slower, exact)"
        )

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "the restyled image, RGB")

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        """Identify the weights (file sizes and times, or the cached commit), not just the name."""
        from pathlib import Path

        from ._source import ModelSource, fingerprint, resolve_config, resolve_source

        source = resolve_source(inputs["model"], settings)
        config = resolve_config(inputs.get("config"), settings) if source.kind == "single_file" else None
        if config is None:
            return fingerprint(source)
        return [fingerprint(source), fingerprint(ModelSource("folder" if Path(config).is_dir() else "repo", config))]

    @classmethod
    def downloads(cls, inputs: dict[str, Any], settings: Any) -> list[tuple[str, str]]:
        from ._source import repo_cached, resolve_config, resolve_source

        source = resolve_source(inputs["model"], settings)
        wanted = [("model", source.ref)] if source.kind == "repo" else []
        config = resolve_config(inputs.get("config"), settings) if source.kind == "single_file" else None
        if config and not config.startswith("/"):  # a repo id, not a local folder
            wanted.append(("config", config))
        return [(name, f"Hugging Face repo {ref}") for name, ref in wanted if not repo_cached(ref)]

    def run(
        self,
        image: Any,
        prompt: str,
        negative_prompt: str,
        strength: float,
        guidance_scale: float,
        steps: int,
        seed: int | None,
        scheduler: str,
        model: str,
        config: str | None,
        dtype: str,
        attention_slicing: bool,
        cpu_offload: bool,
        preview_every: int,
        preview: str,
    ) -> dict:
        from ._pipeline import PIPELINES, dtype_name, load_pipeline
        from ._source import fingerprint, resolve_config, resolve_source

        if int(steps * strength) < 1:
            raise InputError(
                "strength", f"steps x strength = {steps} x {strength} runs no step: raise steps or strength"
            )
        source = resolve_source(model, self.ctx.settings)
        config = resolve_config(config, self.ctx.settings) if source.kind == "single_file" else None
        device = self.ctx.device
        dtype = dtype_name(dtype, device)
        if seed is None:
            import secrets

            seed = secrets.randbits(63)
            self.ctx.log(f"seed {seed}")
        offload = cpu_offload and device.startswith("cuda")
        if cpu_offload and not offload:
            self.ctx.log(f"cpu_offload applies to CUDA only; ignored on {device}")

        from nodes._shared.interruptible import silenced

        log = silenced(self.ctx.log, self.ctx.cancel)  # the load may outlive a cancel

        def load():
            log(f"loading {source.describe()} ({dtype}, {device})")
            return load_pipeline(
                source,
                dtype,
                device,
                offload,
                config,
                log,
                report=silenced(self.ctx.progress, self.ctx.cancel),
                cancel=self.ctx.check_cancelled,
            )

        # A repo's cached commit appears only once it is downloaded: keying on it would
        # load a second copy after the first run. Local weights are keyed by their stats.
        weights = None if source.kind == "repo" else repr(fingerprint(source))
        key = (source, weights, config, dtype, device, offload)
        with PIPELINES.use(key, load, self.ctx.check_cancelled) as entry:
            entry.use_scheduler(scheduler)
            entry.use_attention_slicing(attention_slicing)
            result = self._denoise(
                entry.pipe,
                image,
                prompt,
                negative_prompt,
                strength,
                guidance_scale,
                steps,
                seed,
                preview_every,
                preview,
            )
        return {"image": result}

    def _denoise(
        self,
        pipe: Any,
        image: Any,
        prompt: str,
        negative_prompt: str,
        strength: float,
        guidance_scale: float,
        steps: int,
        seed: int,
        preview_every: int,
        preview: str,
    ) -> Any:
        import torch

        from nodes._shared.pixels import as_image, resize, to_rgb, to_torch

        rgb = to_rgb(image)
        h, w = (rgb.shape[0] // VAE_STRIDE) * VAE_STRIDE, (rgb.shape[1] // VAE_STRIDE) * VAE_STRIDE
        if not h or not w:
            raise InputError(
                "image",
                f"the image is {rgb.shape[1]}x{rgb.shape[0]}: SD needs at least {VAE_STRIDE}x{VAE_STRIDE} pixels",
            )
        rgb = resize(rgb, w, h)

        def on_step_end(p: Any, i: int, t: Any, tensors: dict) -> dict:
            total = p.num_timesteps
            self.ctx.progress(i + 1, total)
            if preview_every and (i + 1) % preview_every == 0 and i + 1 < total:
                self.ctx.preview(self._preview(p, tensors["latents"], preview))
            self.ctx.check_cancelled()  # raises Cancelled: diffusers stops between steps
            return tensors

        out = pipe(
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            image=to_torch(rgb),
            strength=strength,
            guidance_scale=guidance_scale,
            num_inference_steps=steps,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
            callback_on_step_end=on_step_end,
        )
        return as_image(out.images[0])

    @staticmethod
    def _preview(pipe: Any, latents: Any, method: str) -> Any:
        from ._preview import latent_preview

        if method == "fast":
            return latent_preview(latents)
        import torch

        with torch.no_grad():
            decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
        return pipe.image_processor.postprocess(decoded, output_type="np")[0]
