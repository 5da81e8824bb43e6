"""Inputs that name a local file besides images (VGGFeatures `weights`, HubStylize's local
`handle`, SDImg2Img `model` and `config`, an optimizer's frame names): in the server
(Settings(confine_paths=True)) they stay inside its inputs folder, refused at validation
by node and input; in the CLI they mean what they always did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.extras import requires_extra

from nodeflow.context import Settings
from nodeflow.errors import GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan

ESCAPES = ["/etc/passwd", "../x", "sub/../../x", "~/.ssh/id_rsa"]


def image() -> dict:
    return {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}}


def vgg_graph(weights: str) -> dict:
    return {"vgg": {"type": "VGGFeatures", "inputs": {"model": "vgg19", "fallback": "vgg16", "weights": weights}}}


def hub_graph(handle: str, source: str = "tfhub") -> dict:
    return {
        "load": image(),
        "stylize": {
            "type": "HubStylize",
            "inputs": {
                "content": {"from": "load.image"},
                "style": {"from": "load.image"},
                "model_source": source,
                "handle": handle,
            },
        },
        "save": {"type": "Save", "inputs": {"image": {"from": "stylize.image"}}},
    }


def sd_graph(model: str, config: str | None = None) -> dict:
    sd = {"image": {"from": "load.image"}, "prompt": "x", "model": model, "config": config}
    return {
        "load": image(),
        "sd": {"type": "SDImg2Img", "inputs": sd},
        "save": {"type": "Save", "inputs": {"image": {"from": "sd.image"}}},
    }


def issues_of(nodes: dict, settings: Settings) -> list:
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph({"nodes": nodes}), settings, probe=False)
    return info.value.issues


def located(nodes: dict, settings: Settings) -> set[tuple[str | None, str | None]]:
    return {(i.node, i.input) for i in issues_of(nodes, settings)}


@pytest.fixture
def server_inputs(tmp_path, assets) -> Settings:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "astronaut.png").write_bytes((assets / "astronaut.png").read_bytes())
    return Settings(input_dir=inputs, output_dir=tmp_path / "out", confine_paths=True)


@pytest.mark.parametrize("name", ESCAPES)
def test_the_server_refuses_vgg_weights_outside_its_inputs(server_inputs, name):
    issues = issues_of(vgg_graph(name), server_inputs)
    refused = [i for i in issues if (i.node, i.input) == ("vgg", "weights")]
    assert refused and "inside inputs/" in refused[0].message
    assert str(server_inputs.input_dir) not in " ".join(i.message for i in issues)


@pytest.mark.parametrize("name", ESCAPES)
def test_the_server_refuses_a_hub_handle_outside_its_inputs(server_inputs, name):
    for source in ("tfhub", "onnx"):  # refused even where the handle would go unused
        assert ("stylize", "handle") in located(hub_graph(name, source), server_inputs)


@pytest.mark.parametrize("name", ESCAPES)
def test_the_server_refuses_an_sd_model_or_config_outside_its_inputs(server_inputs, name):
    assert ("sd", "model") in located(sd_graph(name), server_inputs)
    (server_inputs.input_dir / "ckpt.safetensors").write_bytes(b"x")
    assert ("sd", "config") in located(sd_graph("ckpt.safetensors", name), server_inputs)


def test_a_symlink_out_of_the_inputs_is_refused(server_inputs, tmp_path):
    secret = tmp_path / "secret.pth"
    secret.write_bytes(b"weights")
    os.symlink(secret, server_inputs.input_dir / "link.pth")
    issues = issues_of(vgg_graph("link.pth"), server_inputs)
    assert [i.message for i in issues if (i.node, i.input) == ("vgg", "weights")] == [
        "'link.pth' leads outside inputs/ (symlink?)"
    ]


@requires_extra("nst")
def test_frame_names_outside_the_output_folder_are_refused_before_running(server_inputs):
    nodes = {
        "load": image(),
        "vgg": {"type": "VGGFeatures", "inputs": {"model": "vgg16"}},
        "style": {"type": "StyleLoss", "inputs": {"vgg": {"from": "vgg.vgg"}, "style": {"from": "load.image"}}},
        "opt": {
            "type": "AdamOptimize",
            "inputs": {
                "image": {"from": "load.image"},
                "loss1": {"from": "style.loss"},
                "save_frames": True,
                "frame_prefix": "../frames",
            },
        },
        "save": {"type": "Save", "inputs": {"image": {"from": "opt.image"}}},
    }
    for settings in (server_inputs, Settings(input_dir=server_inputs.input_dir)):  # the CLI too
        assert ("opt", "frame_prefix") in located(nodes, settings)
    nodes["opt"]["inputs"]["frame_prefix"] = "frames/nst"
    build_plan(parse_graph({"nodes": nodes}), server_inputs, probe=False)


@requires_extra("nst")
def test_weights_inside_the_server_inputs_are_found_there(server_inputs):
    (server_inputs.input_dir / "w.pth").write_bytes(b"not read at validation")
    plan = build_plan(
        parse_graph(
            {
                "nodes": {
                    **vgg_graph("w.pth"),
                    "load": image(),
                    "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
                }
            }
        ),
        server_inputs,
        only=["vgg"],
        probe=False,
    )
    state = plan.nodes["vgg"].extra[0]
    assert state.startswith(f"vgg19:file:{(server_inputs.input_dir / 'w.pth').resolve()}:")


@requires_extra("nst")
def test_the_cli_reads_weights_and_handles_where_they_are(tmp_path, monkeypatch, assets):
    """Unconfined: an absolute path as it is, a relative one from the working directory."""
    weights = tmp_path / "elsewhere" / "w.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    cli = Settings(input_dir=assets)
    for name in (str(weights), "elsewhere/w.pth"):
        monkeypatch.chdir(tmp_path)
        plan = build_plan(
            parse_graph(
                {
                    "nodes": {
                        **vgg_graph(name),
                        "load": image(),
                        "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
                    }
                }
            ),
            cli,
            only=["vgg"],
            probe=False,
        )
        assert plan.nodes["vgg"].extra[0].startswith(f"vgg19:file:{weights.resolve()}:")
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"")
    from nodes.hub._tfhub import tfhub_local_path

    assert tfhub_local_path(str(model), cli) == model
    assert tfhub_local_path("model", cli) == Path("model")


def test_an_input_checked_before_the_run_cannot_be_a_link(assets):
    """A file-naming input fed by another node's text (a graph the fuzzer found): named, no KeyError."""
    nodes = {
        "first": image(),
        "save1": {"type": "Save", "inputs": {"image": {"from": "first.image"}}},
        "load": {"type": "LoadImage", "inputs": {"path": {"from": "save1.path"}}},
        "vgg": {"type": "VGGFeatures", "inputs": {"model": {"from": "save1.path"}}},
        "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
    }
    got = {(i.code, i.node, i.input): i.message for i in issues_of(nodes, Settings(input_dir=assets))}
    assert got[("invalid_link", "load", "path")] == (
        "LoadImage checks 'path' before running (a file, a model): give it as a value, not a link"
    )
    assert ("invalid_link", "vgg", "model") in got
