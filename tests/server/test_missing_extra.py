"""A server without an extra's framework refuses that family's graphs with a 422 naming the extra.

Where torch is installed, the test hides it from the engine (the framework's module name then
names no installed module); in a base + server install it is missing for real.
"""

from __future__ import annotations

import json

import pytest
from support.paths import GRAPHS

from nodeflow import devices


@pytest.fixture
def no_torch(monkeypatch):
    import nodes._shared.torch_device  # noqa: F401  (registers the torch framework)

    if devices.installed("torch"):
        monkeypatch.setitem(devices._MODULES, "torch", "nodeflow_no_such_module")
    monkeypatch.setattr(devices, "_probe_cache", {})


def test_a_style_transfer_graph_without_torch_gets_422_naming_the_extra(api, no_torch):
    client = api()
    before = client.get("/jobs").json()["counts"]
    graph = json.loads((GRAPHS / "nst_quick.json").read_text())
    r = client.post("/jobs", json={"graph": graph})
    assert r.status_code == 422, r.text
    issues = r.json()["issues"]
    missing = [i for i in issues if i["code"] == "framework_missing"]
    assert len(missing) == 1, issues  # once, at the first node on torch
    assert missing[0]["node"] == "vgg"
    assert "torch" in missing[0]["message"] and "nodeflow[nst]" in missing[0]["message"]
    assert client.get("/jobs").json()["counts"] == before


def test_the_cli_names_the_extra_for_a_bundled_graph_by_name(no_torch, tmp_path, capsys):
    from nodeflow.cli.command import main

    assert main(["run", "nst_quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "VGGFeatures runs on torch" in err and "nodeflow[nst]" in err and "Traceback" not in err
