"""SDImg2Img on a tiny, randomly initialised SD pipeline (no real weights here),
loaded through the node's public `model` input exactly as a user's would be."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support.extras import import_extra

import_extra("sd", "diffusers")

from support.sd_fixture import build_tiny_pipeline, write_single_file  # noqa: E402

from nodeflow.context import CancelToken, Settings  # noqa: E402
from nodeflow.errors import GraphInvalid  # noqa: E402
from nodeflow.executor import Executor  # noqa: E402
from nodeflow.graph import parse_graph  # noqa: E402
from nodeflow.plan import build_plan  # noqa: E402

SIZE = 32  # px; the tiny VAE halves it, so latents are 16x16


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    """A diffusers folder holding a tiny random SD img2img pipeline (built once)."""
    return build_tiny_pipeline(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Nothing may touch the network; the HF cache is empty and private to the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: extra threads only add contention on a shared machine. Restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sd_graph(model: str, device: str | None = None, **inputs) -> dict:
    sd = {"image": {"from": "load.image"}, "prompt": "Van Gogh style", "steps": 4, "model": model}
    sd.update(inputs)
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": SIZE}},
            "sd": {"type": "SDImg2Img", "inputs": sd, **({"device": device} if device else {})},
            "save": {"type": "Save", "inputs": {"image": {"from": "sd.image"}, "filename": "sd.png"}},
        }
    }


def run(model, executor: Executor | None = None, cancel_at: int | None = None, device: str | None = None, **inputs):
    """Run the graph up to the SD node (pinned to `device` if given); returns (RunResult, events)."""
    plan = build_plan(parse_graph(sd_graph(str(model), device, **inputs)), Settings(), only=["sd"])
    token, events = CancelToken(), []

    def emit(event):
        events.append(event)
        if cancel_at is not None and event.kind == "node_progress" and event.node == "sd" and event.value == cancel_at:
            token.cancel()

    result = (executor or Executor()).run(plan, emit=emit, cancel=token)
    return result, events


def image_of(result) -> np.ndarray:
    assert result.status == "succeeded", result.error
    return result.values["sd"]["image"]


def progress(events) -> list[tuple[float, float]]:
    return [(e.value, e.total) for e in events if e.kind == "node_progress" and e.node == "sd"]


def test_same_seed_same_image_other_seed_other_image(tiny_sd):
    a = image_of(run(tiny_sd, seed=1)[0])
    b = image_of(run(tiny_sd, seed=1)[0])
    c = image_of(run(tiny_sd, seed=2)[0])
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.float32
    assert np.isfinite(a).all() and 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_no_seed_is_fresh_noise_every_run(tiny_sd):
    executor = Executor()
    first, events1 = run(tiny_sd, executor, seed=None)
    second, events2 = run(tiny_sd, executor, seed=None)
    assert np.abs(image_of(first) - image_of(second)).mean() > 1e-3
    assert not [e for e in events2 if e.kind == "node_cached" and e.node == "sd"]  # not cached: it ran
    assert any(e.kind == "log" and e.message.startswith("seed ") for e in events1)


def loaded_pipeline():
    """The pipeline the last run left in the node's model cache (it keeps one)."""
    from nodes.sd._pipeline import PIPELINES

    (key,) = PIPELINES.keys()

    def not_loaded():
        raise AssertionError("the run left no pipeline in the model cache")

    with PIPELINES.use(key, not_loaded, lambda: None) as entry:
        return entry.pipe


def attention_processors(pipe) -> set[str]:
    return {type(p).__name__ for p in pipe.unet.attn_processors.values()}


def test_attention_slicing_reaches_the_pipeline_and_changes_the_memory_not_the_result(tiny_sd):
    plain = image_of(run(tiny_sd, scheduler="ddim")[0])
    assert "SlicedAttnProcessor" not in attention_processors(loaded_pipeline())
    sliced = image_of(run(tiny_sd, scheduler="ddim", attention_slicing=True)[0])
    pipe = loaded_pipeline()
    # Every attention layer of the UNet computes in slices (diffusers' "auto": half the heads).
    assert attention_processors(pipe) == {"SlicedAttnProcessor"}
    assert all(p.slice_size >= 1 for p in pipe.unet.attn_processors.values())
    np.testing.assert_allclose(sliced, plain, atol=1e-4)
    # Off again for the next run on the same cached pipeline.
    again = image_of(run(tiny_sd, scheduler="ddim", seed=7)[0])
    assert loaded_pipeline() is pipe and "SlicedAttnProcessor" not in attention_processors(pipe)
    assert again.shape == plain.shape


def test_cpu_offload_on_the_cpu_is_ignored_and_says_so(tiny_sd):
    """cpu_offload applies to CUDA: on the CPU the node logs that it ignores it, and runs the
    same pipeline (the same cache entry, no accelerate hooks) to the same image."""
    from nodes.sd import _pipeline

    _pipeline.PIPELINES.clear()
    before = _pipeline.PIPELINES.loads
    plain = image_of(run(tiny_sd, device="cpu", scheduler="ddim")[0])
    result, events = run(tiny_sd, device="cpu", scheduler="ddim", cpu_offload=True)
    np.testing.assert_array_equal(image_of(result), plain)
    assert [e.message for e in events if e.kind == "log" and "cpu_offload" in e.message] == [
        "cpu_offload applies to CUDA only; ignored on cpu"
    ]
    assert _pipeline.PIPELINES.loads - before == 1
    pipe = loaded_pipeline()
    assert getattr(pipe.unet, "_hf_hook", None) is None
    assert {p.device.type for p in pipe.unet.parameters()} == {"cpu"}


def test_cpu_offload_on_cuda_keeps_each_model_on_the_cpu_behind_an_accelerate_hook(tiny_sd):
    """What the node asks for on a CUDA device (load_pipeline with cpu_offload): every
    sub-model stays on the CPU, with a hook that moves it to the GPU only while it runs.
    Installing the hooks needs no GPU; running them would."""
    import torch
    from accelerate.hooks import CpuOffload

    from nodes.sd._pipeline import load_pipeline
    from nodes.sd._source import ModelSource

    logs: list[str] = []
    pipe = load_pipeline(ModelSource("folder", str(tiny_sd)), "fp32", "cuda:0", True, None, logs.append)
    for name in ("text_encoder", "unet", "vae"):
        model = getattr(pipe, name)
        hook = getattr(model, "_hf_hook", None)
        assert isinstance(hook, CpuOffload), name
        assert torch.device(hook.execution_device) == torch.device("cuda:0"), name
        assert {p.device.type for p in model.parameters()} == {"cpu"}, name
    plain = load_pipeline(ModelSource("folder", str(tiny_sd)), "fp32", "cpu", False, None, logs.append)
    assert getattr(plain.unet, "_hf_hook", None) is None


def test_the_node_asks_for_cpu_offload_on_a_cuda_device(tiny_sd, monkeypatch):
    """Placed on CUDA (faked here), the node passes cpu_offload on to the loader, keys its
    cache on it, and says nothing about ignoring it."""
    from nodeflow.node import InputError
    from nodes.sd import _pipeline

    calls = []

    def recording_loader(source, dtype, device, cpu_offload, config, log, report=None, cancel=None):
        calls.append({"device": device, "cpu_offload": cpu_offload, "dtype": dtype})
        raise InputError("model", "stopped by the test after the loader was called")

    monkeypatch.setattr(_pipeline, "load_pipeline", recording_loader)
    _pipeline.PIPELINES.clear()
    plan = build_plan(
        parse_graph(sd_graph(str(tiny_sd), "cuda", cpu_offload=True)),
        Settings(),
        only=["sd"],
        available={"torch": {"cpu", "cuda", "cuda:0"}},
    )
    assert plan.nodes["sd"].device.startswith("cuda")
    events = []
    result = Executor().run(plan, emit=events.append)
    assert result.status == "failed" and "stopped by the test" in result.error.message
    assert calls == [{"device": plan.nodes["sd"].device, "cpu_offload": True, "dtype": "fp16"}]
    assert not [e for e in events if e.kind == "log" and "cpu_offload" in e.message]


def test_fp16_on_the_cpu_is_refused(tiny_sd):
    result, _ = run(tiny_sd, device="cpu", dtype="fp16")  # pinned: on a GPU machine fp16 would run
    assert result.nodes["sd"].device == "cpu"
    with_cuda = build_plan(
        parse_graph(sd_graph(str(tiny_sd), "cpu", dtype="fp16")),
        Settings(),
        only=["sd"],
        available={"torch": {"cpu", "cuda", "cuda:0"}},
    )
    assert with_cuda.nodes["sd"].device == "cpu"  # the pin holds where CUDA is there
    assert result.status == "failed" and result.error.input == "dtype" and "CPU" in str(result.error)


@pytest.mark.parametrize(
    "scheduler, steps, strength, expected",
    [
        ("ddim", 10, 0.5, 5),
        ("euler_ancestral", 7, 0.6, 4),  # int(4.2)
        ("dpmpp_2m", 4, 0.75, 3),
        ("default", 10, 0.3, 4),  # PNDM: int(3.0) + its one warm-up step
    ],
)
def test_steps_run_follow_strength(tiny_sd, scheduler, steps, strength, expected):
    result, events = run(tiny_sd, scheduler=scheduler, steps=steps, strength=strength, preview_every=2)
    image_of(result)
    assert progress(events) == [(i, expected) for i in range(1, expected + 1)]
    previews = [e.image for e in events if e.kind == "node_preview"]
    assert len(previews) == (expected - 1) // 2  # every 2 steps, none after the last
    assert all(p.shape == (SIZE // 2, SIZE // 2, 3) for p in previews)  # at latent size


def test_scheduler_choice_changes_the_result(tiny_sd):
    ddim = image_of(run(tiny_sd, scheduler="ddim")[0])
    euler_a = image_of(run(tiny_sd, scheduler="euler_ancestral")[0])
    assert np.abs(ddim - euler_a).mean() > 1e-3


def test_vae_preview_is_full_size(tiny_sd):
    result, events = run(tiny_sd, scheduler="ddim", steps=6, strength=0.5, preview_every=1, preview="vae")
    image_of(result)
    previews = [e.image for e in events if e.kind == "node_preview"]
    assert len(previews) == 2 and all(p.shape == (SIZE, SIZE, 3) for p in previews)


def test_cancel_mid_run(tiny_sd):
    result, events = run(tiny_sd, cancel_at=2, scheduler="ddim", steps=10, strength=1.0)
    assert result.status == "cancelled"
    assert result.nodes["sd"].state == "cancelled"
    assert progress(events) == [(1, 10), (2, 10)]  # stopped between steps 2 and 3
    # The loaded pipeline is still usable afterwards.
    assert image_of(run(tiny_sd, scheduler="ddim", steps=2, strength=1.0)[0]).shape == (SIZE, SIZE, 3)


def test_model_cache_loads_once(tiny_sd, tmp_path):
    from nodes.sd import _pipeline

    _pipeline.PIPELINES.clear()
    before = _pipeline.PIPELINES.loads
    executor = Executor()
    image_of(run(tiny_sd, executor, prompt="Van Gogh style", strength=0.5)[0])
    image_of(run(tiny_sd, executor, prompt="Monet style", strength=0.8)[0])
    assert _pipeline.PIPELINES.loads - before == 1
    # The same inputs again: the engine's value cache answers, the node does not run.
    _, events = run(tiny_sd, executor, prompt="Monet style", strength=0.8)
    assert [e.source for e in events if e.kind == "node_cached" and e.node == "sd"] == ["memory"]

    # Bounded: a second model replaces the first when one entry is allowed.
    other = shutil.copytree(tiny_sd, tmp_path / "other-sd")
    image_of(run(other)[0])
    assert _pipeline.PIPELINES.loads - before == 2 and len(_pipeline.PIPELINES) == 1
    # Freed: after clear() the next run loads again.
    _pipeline.PIPELINES.clear()
    assert len(_pipeline.PIPELINES) == 0
    image_of(run(other, seed=5)[0])
    assert _pipeline.PIPELINES.loads - before == 3


def test_repo_id_found_in_hf_cache_offline(tiny_sd, tmp_path):
    """A repo id resolves through the standard HF cache layout, with no network."""
    from nodes.sd import _download, _pipeline, _source

    repo = _source.hf_cache_dir() / "models--someone--tiny-sd"
    commit = "0" * 40
    shutil.copytree(tiny_sd, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    _pipeline.PIPELINES.clear()
    before = _pipeline.PIPELINES.loads
    result, events = run("someone/tiny-sd", scheduler="ddim")
    assert image_of(result).shape == (SIZE, SIZE, 3)
    assert any(e.kind == "log" and "someone/tiny-sd" in e.message for e in events)
    image_of(run("someone/tiny-sd", scheduler="ddim", prompt="Monet style")[0])
    assert _pipeline.PIPELINES.loads - before == 1
    # fp16 weights are asked for first; a repo without them falls back to the full ones.
    folder, variant = _download.download_repo("someone/tiny-sd", "fp16")
    assert folder == repo / "snapshots" / commit and variant is None


def test_single_file_checkpoint_in_a_models_folder(tiny_sd, tmp_path, monkeypatch, assets):
    """A ComfyUI-style models/x.safetensors (original layout), named relative to the input
    directory, gives the same image as the diffusers folder it was written from."""
    inputs = tmp_path / "inputs"
    (inputs / "models").mkdir(parents=True)
    (inputs / "astronaut.png").symlink_to(assets / "astronaut.png")
    write_single_file(tiny_sd, inputs / "models" / "tiny.safetensors")
    monkeypatch.setenv("NODEFLOW_INPUT_DIR", str(inputs))
    single = image_of(run("models/tiny.safetensors", config=str(tiny_sd), scheduler="ddim")[0])
    folder = image_of(run(tiny_sd, scheduler="ddim")[0])
    np.testing.assert_allclose(single, folder, atol=1e-5)

    # Without `config`, offline and with nothing cached, the error names what is missing.
    result, _ = run("models/tiny.safetensors")
    assert result.status == "failed" and result.error.input == "model"
    for needle in ("models/tiny.safetensors", "config files", "HF_HUB_OFFLINE", "internet", "`config`"):
        assert needle in result.error.message, needle
    assert "Traceback" not in result.error.message


def test_offline_missing_repo_says_what_to_do(tiny_sd):
    result, _ = run("someone/not-downloaded")
    assert result.status == "failed"
    err = result.error
    assert err.node == "sd" and err.input == "model"
    for needle in (
        "someone/not-downloaded",
        "not in the Hugging Face cache",
        "HF_HUB_OFFLINE",
        "internet",
        "local diffusers folder",
        ".safetensors",
    ):
        assert needle in err.message, needle
    assert "Traceback" not in err.message


def test_bundled_graph_offline_fails_cleanly_in_the_cli(cli, tmp_path):
    proc = cli(
        "run",
        "graphs/sd_vangogh.json",
        "--out",
        str(tmp_path / "out"),
        "--quiet",
        env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-hub")},
    )
    assert proc.returncode == 1, proc.stderr
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in proc.stderr
    assert "local diffusers folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_local_model_is_a_validation_error(tmp_path):
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph(sd_graph(str(tmp_path / "models" / "nope.safetensors"))), Settings())
    issue = info.value.issues[0]
    assert (issue.node, issue.input) == ("sd", "model") and "not found" in issue.message


def test_folder_without_model_index_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph(sd_graph(str(tmp_path / "empty"))), Settings())
    assert "model_index.json" in info.value.issues[0].message


def test_strength_that_runs_no_step_is_refused(tiny_sd):
    result, _ = run(tiny_sd, steps=2, strength=0.3)
    assert result.status == "failed" and result.error.input == "strength"


def test_bundled_graph_validates(cli):
    proc = cli("validate", "graphs/sd_vangogh.json")
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
