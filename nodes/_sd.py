"""Stable Diffusion plumbing for SD nodes: where the weights come from, loading a
pipeline once into a process-level model cache, scheduler choice, and clear
errors when the weights can't be had.

Model sources (the node's `model` input):
- a Hugging Face repo id (default `stable-diffusion-v1-5/stable-diffusion-v1-5`),
  downloaded once into the standard HF cache ($HF_HUB_CACHE, $HF_HOME/hub or
  ~/.cache/huggingface/hub), fp16 weights only when the dtype is fp16;
- a local diffusers folder (one with model_index.json);
- a single-file checkpoint (`.safetensors`), as ComfyUI keeps them in models/.
Relative paths resolve against the input directory, like LoadImage's.

diffusers, transformers, torch and huggingface_hub are imported only inside functions.
"""
from __future__ import annotations

import gc
import os
import re
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from nodeflow.node import InputError

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SINGLE_FILE_SUFFIX = ".safetensors"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Components an img2img run needs; the safety checker (1.2 GB) is not loaded.
WEIGHTS = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "model"}
CONFIG_FILES = ["model_index.json", "scheduler/*.json", "tokenizer/*", "unet/config.json",
                "vae/config.json", "text_encoder/config.json"]

# name -> (diffusers class, extra config). "default" keeps the model's own scheduler
# (PNDM for SD v1.5). Names follow ComfyUI's samplers; A1111 calls euler_ancestral
# "Euler a" and dpmpp_2m "DPM++ 2M".
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "default": ("", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddim": ("DDIMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                        "use_karras_sigmas": True}),
}
DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


# ---------------------------------------------------------------- sources

@dataclass(frozen=True)
class ModelSource:
    kind: str          # "repo", "folder" or "single_file"
    ref: str           # repo id, or an absolute path

    def describe(self) -> str:
        return {"repo": "Hugging Face repo", "folder": "diffusers folder",
                "single_file": "checkpoint"}[self.kind] + f" {self.ref}"


def resolve_source(model: str, settings: Any) -> ModelSource:
    """Decide what `model` names: an existing local path wins over a repo id."""
    text = model.strip()
    if not text:
        raise InputError("model", "empty: give a Hugging Face repo id, a diffusers folder or a .safetensors file")
    path = settings.input_path(text, "model")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InputError("model", f"{path} is a folder but not a diffusers pipeline (no model_index.json)")
        return ModelSource("folder", str(path.resolve()))
    if path.is_file():
        if path.suffix.lower() != SINGLE_FILE_SUFFIX:
            raise InputError("model", f"{path}: only {SINGLE_FILE_SUFFIX} checkpoints are loaded "
                                      "(.ckpt files are pickles that can run code)")
        return ModelSource("single_file", str(path.resolve()))
    looks_like_path = text.lower().endswith((SINGLE_FILE_SUFFIX, ".ckpt")) or text.startswith(("/", ".", "~")) \
        or text.count("/") != 1
    if looks_like_path or not REPO_ID.match(text):
        raise InputError("model", f"not found: {path} (give a Hugging Face repo id such as {DEFAULT_MODEL}, "
                                  "a diffusers folder or a .safetensors file)")
    return ModelSource("repo", text)


def hf_cache_dir() -> Path:
    """The standard HF hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _repo_folder(repo_id: str) -> Path:
    return hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def fingerprint(source: ModelSource) -> Any:
    """Cheap identity of the weights for cache keys: file sizes and times, or the
    cached commit of a repo. Reads no weights."""
    if source.kind == "repo":
        ref = _repo_folder(source.ref) / "refs" / "main"
        return [source.ref, ref.read_text().strip() if ref.is_file() else None]
    root = Path(source.ref)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [source.kind, source.ref] + [[str(p.relative_to(root)) if p != root else p.name,
                                         p.stat().st_size, p.stat().st_mtime_ns] for p in files]


# ---------------------------------------------------------------- download

def offline_message(repo_id: str, detail: str = "") -> str:
    return (f"the weights of {repo_id!r} are not in the Hugging Face cache ({hf_cache_dir()})"
            f"{' (' + detail + ')' if detail else ''}, and the Hub can't be reached"
            f"{' (HF_HUB_OFFLINE is set)' if hf_offline() else ''}. Supply them one of two ways: "
            f"(1) run once with internet access, and they download into that cache "
            f"(for SD v1.5 about 2 GB in fp16, 4 GB in fp32); or (2) set `model` to a local diffusers folder "
            f"(one with model_index.json) or a single .safetensors checkpoint")


def single_file_config_message(path: str) -> str:
    return (f"the checkpoint {path} holds the weights, but loading it also needs its base model's config "
            f"files (a few MB: model_index.json, component configs, tokenizer), which are not in the Hugging "
            f"Face cache ({hf_cache_dir()}), and the Hub can't be reached"
            f"{' (HF_HUB_OFFLINE is set)' if hf_offline() else ''}. Supply them one of two ways: (1) run once "
            f"with internet access, and they download into that cache; or (2) set `config` to a local "
            f"diffusers folder of the same base model (e.g. {DEFAULT_MODEL} for SD v1.5 checkpoints)")


def resolve_config(config: str | None, settings: Any) -> str | None:
    """`config` of a single-file checkpoint: a local diffusers folder (relative to the input
    directory) or a repo id, passed on as is."""
    if not config:
        return None
    path = settings.input_path(config, "config")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InputError("config", f"{path} is not a diffusers folder (no model_index.json)")
        return str(path.resolve())
    if not REPO_ID.match(config.strip()):
        raise InputError("config", f"not found: {path} (give a diffusers folder or a Hugging Face repo id)")
    return config.strip()


def _weight_names(variant: str | None) -> list[str]:
    suffix = f".{variant}.safetensors" if variant else ".safetensors"
    return [f"{comp}/{stem}{suffix}" for comp, stem in WEIGHTS.items()]


def _missing(folder: Path, names: list[str]) -> list[str]:
    return [n for n in names if not (folder / n).is_file()]


def _progress_bar_class(report: Callable[[float, float], None] | None):
    """A silent tqdm that forwards the bytes of huggingface_hub's aggregate bar."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs["disable"] = True
            self._bytes = kwargs.get("unit") == "B" and not str(kwargs.get("desc", "")).startswith("Downloading")
            self._done = 0.0
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> None:
            self._done += n or 0
            if self._bytes and report is not None:
                try:
                    report(self._done, max(float(self.total or 0), self._done))
                except Exception:  # progress must never break a download
                    pass

    return Reporting


def download_repo(repo_id: str, variant: str | None,
                  report: Callable[[float, float], None] | None = None) -> tuple[Path, str | None]:
    """Fetch the configs and the img2img weights of `repo_id` into the HF cache.
    Returns (snapshot folder, the variant present). fp16 weights are fetched when
    `variant` is "fp16" and the repo has them, else the full-precision ones."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    def fetch(weights: list[str]) -> Path:
        try:
            return Path(snapshot_download(repo_id, cache_dir=hf_cache_dir(), local_files_only=hf_offline(),
                                          allow_patterns=CONFIG_FILES + weights,
                                          tqdm_class=_progress_bar_class(report)))
        except (RepositoryNotFoundError, RevisionNotFoundError):
            raise InputError("model", f"there is no Hugging Face repo {repo_id!r} (or it is private: "
                                      "log in with `hf auth login`)") from None
        except GatedRepoError:
            raise InputError("model", f"{repo_id!r} is gated: accept its licence on huggingface.co and "
                                      "log in with `hf auth login`") from None
        except LocalEntryNotFoundError:
            raise InputError("model", offline_message(repo_id)) from None
        except (HfHubHTTPError, OSError) as exc:
            raise InputError("model", offline_message(repo_id, f"{exc.__class__.__name__}: {exc}")) from None

    tries = [variant, None] if variant else [None]
    for want in tries:
        folder = fetch(_weight_names(want))
        if not _missing(folder, ["model_index.json"] + _weight_names(want)):
            return folder, want
    missing = _missing(folder, ["model_index.json"] + _weight_names(None))
    raise InputError("model", offline_message(repo_id, "missing " + ", ".join(missing)))


# ---------------------------------------------------------------- loading

def dtype_name(name: str, device: str) -> str:
    """`auto` is fp16 on CUDA and fp32 elsewhere (CPU, and MPS where fp16 is fragile)."""
    if name == "auto":
        name = "fp16" if device.startswith("cuda") else "fp32"
    if name == "fp16" and device == "cpu":
        raise InputError("dtype", "fp16 is not supported on the CPU (slow, and some ops are missing): "
                                  "use fp32, bf16 or auto")
    return name


def load_pipeline(source: ModelSource, dtype: str, device: str, cpu_offload: bool, config: str | None,
                  log: Callable[[str], None], report: Callable[[float, float], None] | None = None):
    """Load an img2img pipeline and place it. Every failure becomes an InputError.
    A repo is fetched (or found in the HF cache) before diffusers is even imported,
    so a missing model fails fast."""
    folder = variant = None
    if source.kind == "repo":
        log(f"fetching {source.ref} into {hf_cache_dir()} (once)")
        folder, variant = download_repo(source.ref, "fp16" if dtype == "fp16" else None, report)
    elif source.kind == "folder":
        folder = Path(source.ref)
        variant = "fp16" if dtype == "fp16" and not _missing(folder, _weight_names("fp16")) else None
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline

    no_safety = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    kwargs = dict(torch_dtype=getattr(torch, DTYPES[dtype]), **no_safety)
    try:
        with _quiet_loading():
            if source.kind == "single_file":
                if config:
                    kwargs["config"] = config
                pipe = StableDiffusionImg2ImgPipeline.from_single_file(
                    source.ref, local_files_only=hf_offline(), **kwargs)
            else:
                pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
                    folder, variant=variant, local_files_only=True, image_encoder=None, **kwargs)
    except Exception as exc:  # a broken folder or file: name it, without a deep traceback
        from huggingface_hub.errors import LocalEntryNotFoundError
        if source.kind == "single_file" and not config and isinstance(exc, LocalEntryNotFoundError):
            raise InputError("model", single_file_config_message(source.ref)) from None
        raise InputError("config" if config and source.kind == "single_file" else "model",
                         f"could not load a Stable Diffusion pipeline from {source.describe()}: "
                         f"{exc.__class__.__name__}: {exc}") from None
    pipe.set_progress_bar_config(disable=True)  # the node reports progress itself
    if cpu_offload and device.startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """No library progress bars on the console while loading (the node logs instead), and
    no warning that newer diffusers prefer `dtype=` (older ones only know `torch_dtype=`)."""
    import warnings

    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog
    was = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated", category=FutureWarning)
            yield
    finally:
        if was[0]:
            dlog.enable_progress_bar()
        if was[1]:
            tlog.enable_progress_bar()


# ---------------------------------------------------------------- model cache

@dataclass
class _Entry:
    pipe: Any
    scheduler_config: Any     # the model's own scheduler, for `default` and swaps
    lock: threading.Lock      # one run at a time per pipeline (schedulers hold state)
    schedulers: dict = field(default_factory=dict)
    sliced: bool = False

    def use_scheduler(self, name: str) -> None:
        """Set the named scheduler, built once per pipeline: like a bare pipeline, it is
        reused from run to run (set_timesteps resets its state)."""
        if name not in self.schedulers:
            self.schedulers[name] = make_scheduler(name, self.scheduler_config)
        if self.pipe.scheduler is not self.schedulers[name]:
            self.pipe.scheduler = self.schedulers[name]

    def use_attention_slicing(self, on: bool) -> None:
        if on != self.sliced:  # switching rebuilds every attention processor: only on change
            self.pipe.enable_attention_slicing() if on else self.pipe.disable_attention_slicing()
            self.sliced = on


class PipelineCache:
    """Loaded pipelines keyed by (source, weights fingerprint, dtype, device, offload).
    Bounded by `max_entries` (least recently used goes first); `clear()` frees all."""

    def __init__(self, max_entries: int = 1):
        self.max_entries = max_entries
        self.loads = 0                      # how many times a pipeline was loaded
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[tuple]:
        return list(self._entries)

    @contextmanager
    def use(self, key: tuple, loader: Callable[[], Any]) -> Iterator[_Entry]:
        """The entry for `key`, loading it on a miss, held exclusively while in use."""
        with self._lock:  # one load at a time: two runs must not load the same model twice
            entry = self._entries.get(key)
            if entry is None:
                pipe = loader()
                self.loads += 1
                entry = _Entry(pipe, pipe.scheduler.config, threading.Lock())
                self._entries[key] = entry
            self._entries.move_to_end(key)
            self._evict(keep=1)
        try:
            with entry.lock:
                yield entry
        finally:
            if self.max_entries == 0:  # keep nothing: free it as soon as the run is done
                with self._lock:
                    self._evict(keep=0)

    def resize(self, max_entries: int) -> None:
        with self._lock:
            self.max_entries = max_entries
            self._evict(keep=0)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        _free_memory()

    def _evict(self, keep: int) -> None:
        evicted = False
        while len(self._entries) > max(self.max_entries, keep):
            self._entries.popitem(last=False)
            evicted = True
        if evicted:
            _free_memory()


def _free_memory() -> None:
    gc.collect()
    import sys
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _max_models() -> int:
    try:
        return max(0, int(os.environ.get("NODEFLOW_SD_MAX_MODELS", "1")))
    except ValueError:
        return 1


# One process-level cache: the HTTP server keeps the model between runs.
# NODEFLOW_SD_MAX_MODELS=0 keeps none (each run loads, then frees).
PIPELINES = PipelineCache(_max_models())


def make_scheduler(name: str, base_config: Any):
    """A fresh scheduler per run (they hold per-run state), built from the model's config."""
    import diffusers
    cls_name, extra = SCHEDULERS[name]
    if not cls_name:
        cls_name = base_config["_class_name"]
    cls = getattr(diffusers, cls_name)
    return cls.from_config(base_config, **extra)


# SD v1.x latent -> RGB, a linear fit (as ComfyUI's latent previews use): a cheap preview.
LATENT_RGB = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
              [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]


def latent_preview(latents: Any):
    """Approximate RGB (IMAGE, at latent resolution) from 4-channel SD latents."""
    import torch
    lat = latents[0].detach().float().cpu()
    rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(LATENT_RGB))
    return ((rgb + 1) / 2).clamp(0, 1).contiguous().numpy()
