"""Loading an img2img pipeline once into a process-level model cache, and scheduler choice.
diffusers, transformers and torch are imported inside functions only."""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodeflow.node import InputError
from nodes._shared.interruptible import acquire, interruptible

from ._download import download_repo, missing_files, single_file_config_message, weight_names
from ._source import ModelSource, hf_cache_dir, hf_offline

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
    "dpmpp_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
}

DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def dtype_name(name: str, device: str) -> str:
    """`auto` is fp16 on CUDA and fp32 elsewhere (CPU, and MPS where fp16 is fragile)."""
    if name == "auto":
        name = "fp16" if device.startswith("cuda") else "fp32"
    if name == "fp16" and device == "cpu":
        raise InputError(
            "dtype", "fp16 is not supported on the CPU (slow, and some ops are missing): use fp32, bf16 or auto"
        )
    return name


def load_pipeline(
    source: ModelSource,
    dtype: str,
    device: str,
    cpu_offload: bool,
    config: str | None,
    log: Callable[[str], None],
    report: Callable[[float, float], None] | None = None,
    cancel: Callable[[], None] = lambda: None,
):
    """Load an img2img pipeline and place it. Every failure becomes an InputError.
    A repo is fetched (or found in the HF cache) before diffusers is even imported,
    so a missing model fails fast. cancel() is called between fetching, reading and placing."""
    folder = variant = None
    if source.kind == "repo":
        log(f"fetching {source.ref} into {hf_cache_dir()} (once)")
        folder, variant = download_repo(source.ref, "fp16" if dtype == "fp16" else None, report)
    elif source.kind == "folder":
        folder = Path(source.ref)
        variant = "fp16" if dtype == "fp16" and not missing_files(folder, weight_names("fp16")) else None
    cancel()
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
                    source.ref, local_files_only=hf_offline(), **kwargs
                )
            else:
                pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
                    folder, variant=variant, local_files_only=True, image_encoder=None, **kwargs
                )
    except Exception as exc:  # a broken folder or file: name it, without a deep traceback
        from huggingface_hub.errors import LocalEntryNotFoundError

        if source.kind == "single_file" and not config and isinstance(exc, LocalEntryNotFoundError):
            raise InputError("model", single_file_config_message(source.ref)) from None
        raise InputError(
            "config" if config and source.kind == "single_file" else "model",
            f"could not load a Stable Diffusion pipeline from {source.describe()}: {exc.__class__.__name__}: {exc}",
        ) from None
    pipe.set_progress_bar_config(disable=True)  # the node reports progress itself
    cancel()
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


@dataclass
class _Entry:
    pipe: Any
    scheduler_config: Any  # the model's own scheduler, for `default` and swaps
    lock: threading.Lock  # one run at a time per pipeline (schedulers hold state)
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
        self.loads = 0  # how many times a pipeline was loaded
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[tuple]:
        return list(self._entries)

    @contextmanager
    def use(self, key: tuple, loader: Callable[[], Any], cancel: Callable[[], None]) -> Iterator[_Entry]:
        """The entry for `key`, loading it on a miss, held exclusively while in use. A cancel
        (cancel() raises) ends the wait at once: for the load (interruptible) and for another
        run's hold on the entry."""
        entry = interruptible(lambda: self._entry(key, loader), cancel)
        acquire(entry.lock, cancel)
        try:
            yield entry
        finally:
            entry.lock.release()
            if self.max_entries == 0:  # keep nothing: free it as soon as the run is done
                with self._lock:
                    self._evict(keep=0)

    def _entry(self, key: tuple, loader: Callable[[], Any]) -> _Entry:
        with self._lock:  # one load at a time: two runs must not load the same model twice
            entry = self._entries.get(key)
            if entry is None:
                pipe = loader()
                self.loads += 1
                entry = _Entry(pipe, pipe.scheduler.config, threading.Lock())
                self._entries[key] = entry
            self._entries.move_to_end(key)
            self._evict(keep=1)
            return entry

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
