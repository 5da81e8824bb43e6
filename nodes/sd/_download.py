"""Fetching SD weights into the standard Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub
or ~/.cache/huggingface/hub): the configs and the img2img components only, fp16 weights
only when the dtype is fp16, and clear errors when the weights can't be had.
huggingface_hub is imported inside functions only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodeflow.node import InputError

from ._source import DEFAULT_MODEL, hf_cache_dir, hf_offline

# Components an img2img run needs; the safety checker (1.2 GB) is not loaded.
WEIGHTS = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "model"}

CONFIG_FILES = [
    "model_index.json",
    "scheduler/*.json",
    "tokenizer/*",
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
]


def offline_message(repo_id: str, detail: str = "") -> str:
    return (
        f"the weights of {repo_id!r} are not in the Hugging Face cache ({hf_cache_dir()})"
        f"{' (' + detail + ')' if detail else ''}, and the Hub can't be reached"
        f"{' (HF_HUB_OFFLINE is set)' if hf_offline() else ''}. Supply them one of two ways: "
        f"(1) run once with internet access, and they download into that cache "
        f"(for SD v1.5 about 2 GB in fp16, 4 GB in fp32); or (2) set `model` to a local diffusers folder "
        f"(one with model_index.json) or a single .safetensors checkpoint"
    )


def single_file_config_message(path: str) -> str:
    return (
        f"the checkpoint {path} holds the weights, but loading it also needs its base model's config "
        f"files (a few MB: model_index.json, component configs, tokenizer), which are not in the Hugging "
        f"Face cache ({hf_cache_dir()}), and the Hub can't be reached"
        f"{' (HF_HUB_OFFLINE is set)' if hf_offline() else ''}. Supply them one of two ways: (1) run once "
        f"with internet access, and they download into that cache; or (2) set `config` to a local "
        f"diffusers folder of the same base model (e.g. {DEFAULT_MODEL} for SD v1.5 checkpoints)"
    )


def weight_names(variant: str | None) -> list[str]:
    suffix = f".{variant}.safetensors" if variant else ".safetensors"
    return [f"{comp}/{stem}{suffix}" for comp, stem in WEIGHTS.items()]


def missing_files(folder: Path, names: list[str]) -> list[str]:
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


def download_repo(
    repo_id: str, variant: str | None, report: Callable[[float, float], None] | None = None
) -> tuple[Path, str | None]:
    """Fetch the configs and the img2img weights of `repo_id` into the HF cache.
    Returns (snapshot folder, the variant present). fp16 weights are fetched when
    `variant` is "fp16" and the repo has them, else the full-precision ones."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def fetch(weights: list[str]) -> Path:
        try:
            return Path(
                snapshot_download(
                    repo_id,
                    cache_dir=hf_cache_dir(),
                    local_files_only=hf_offline(),
                    allow_patterns=CONFIG_FILES + weights,
                    tqdm_class=_progress_bar_class(report),
                )
            )
        except (RepositoryNotFoundError, RevisionNotFoundError):
            raise InputError(
                "model", f"there is no Hugging Face repo {repo_id!r} (or it is private: log in with `hf auth login`)"
            ) from None
        except GatedRepoError:
            raise InputError(
                "model", f"{repo_id!r} is gated: accept its licence on huggingface.co and log in with `hf auth login`"
            ) from None
        except LocalEntryNotFoundError:
            raise InputError("model", offline_message(repo_id)) from None
        except (HfHubHTTPError, OSError) as exc:
            raise InputError("model", offline_message(repo_id, f"{exc.__class__.__name__}: {exc}")) from None

    tries = [variant, None] if variant else [None]
    for want in tries:
        folder = fetch(weight_names(want))
        if not missing_files(folder, ["model_index.json"] + weight_names(want)):
            return folder, want
    missing = missing_files(folder, ["model_index.json"] + weight_names(None))
    raise InputError("model", offline_message(repo_id, "missing " + ", ".join(missing)))
