"""Prompts and editor workflows <-> nodeflow graphs (no server)."""

from __future__ import annotations

import json

import pytest
from support.extras import requires_extra
from support.paths import GRAPHS

from nodeflow.comfy.errors import node_errors
from nodeflow.comfy.translate import graph_to_prompt, prompt_to_graph
from nodeflow.comfy.workflow import graph_to_workflow, workflow_to_graph
from nodeflow.errors import GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan

BUNDLED = sorted(GRAPHS.glob("*.json"))


def load(path) -> dict:
    graph = json.loads(path.read_text())
    graph.pop("$schema", None)
    return graph


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_graphs_survive_prompt_and_workflow_round_trips(path):
    graph = load(path)
    graph["nodes"][next(iter(graph["nodes"]))]["device"] = "cpu"  # a per-node device survives too
    prompt = graph_to_prompt(graph)
    assert list(prompt) == [str(i) for i in range(1, len(graph["nodes"]) + 1)]
    back = prompt_to_graph(prompt, {k: graph[k] for k in ("title", "description", "defaults")})
    assert back.graph == graph and not back.issues
    assert workflow_to_graph(graph_to_workflow(graph)) == _with_defaults(graph)


def _with_defaults(graph: dict) -> dict:
    """A workflow keeps every widget's value, so the defaults come back written out."""
    from nodeflow.registry import load_nodes

    out = json.loads(json.dumps(graph))
    for spec in out["nodes"].values():
        for name, ispec in load_nodes()[spec["type"]].input_specs.items():
            if name not in spec["inputs"] and ispec.default is not None:
                spec["inputs"][name] = ispec.default
    return out


def test_links_use_output_indices_and_ids_map_both_ways():
    graph = load(GRAPHS / "edges.json")
    prompt = graph_to_prompt(graph)
    assert prompt["5"]["inputs"]["image2"] == ["2", 0]  # sobel.magnitude
    assert prompt["2"]["_meta"] == {"title": "sobel", "nodeflow": {"id": "sobel"}}  # unique titles
    prompt["5"]["inputs"]["image2"] = ["2", 2]  # sobel.y
    tr = prompt_to_graph(prompt)
    assert tr.graph["nodes"]["grid"]["inputs"]["image2"] == {"from": "sobel.y"}
    assert tr.back["grid"] == "5"


def test_placeholders_for_unset_optional_inputs_mean_unset():
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 0, "url": "", "sha256": ""}},
        "2": {"class_type": "Save", "inputs": {"image": ["1", 0], "filename": "x.png", "metadata": ""}},
    }
    nodes = prompt_to_graph(prompt).graph["nodes"]
    assert nodes["load_image_1"]["inputs"] == {"path": "astronaut.png"}
    assert nodes["save_2"]["inputs"] == {"image": {"from": "load_image_1.image"}, "filename": "x.png"}


def test_validation_errors_name_the_prompt_node_and_input():
    prompt = graph_to_prompt(load(GRAPHS / "edges.json"))
    prompt["3"]["inputs"]["gain"] = 1000.0  # high_pass: le=100
    prompt["4"]["inputs"]["mode"] = "median"  # not a choice
    del prompt["1"]["inputs"]["image"]  # required (nodeflow's `path`, named as ComfyUI names it)
    tr = prompt_to_graph(prompt)
    with pytest.raises(GraphInvalid) as exc:
        build_plan(parse_graph(tr.graph))
    reply = node_errors(exc.value.issues, tr.back, {c: n["class_type"] for c, n in prompt.items()})
    assert reply["error"]["type"] == "prompt_outputs_failed_validation"
    errs = reply["node_errors"]
    assert set(errs) == {"1", "3", "4"}
    assert errs["3"]["class_type"] == "HighPass"
    assert errs["3"]["errors"][0]["type"] == "value_bigger_than_max"
    assert errs["3"]["errors"][0]["extra_info"] == {"input_name": "gain"}
    assert errs["4"]["errors"][0]["type"] == "value_not_in_list"
    assert errs["1"]["errors"][0]["type"] == "required_input_missing"
    assert errs["1"]["errors"][0]["extra_info"] == {"input_name": "image"}


def test_a_link_to_a_missing_output_index_is_reported_on_the_input():
    prompt = graph_to_prompt(load(GRAPHS / "edges.json"))
    prompt["6"]["inputs"]["image"] = ["5", 3]  # Grid has one output
    tr = prompt_to_graph(prompt)
    with pytest.raises(GraphInvalid) as exc:
        build_plan(parse_graph(tr.graph))
    issue = exc.value.issues[0]
    assert (tr.back[issue.node], issue.input, issue.code) == ("6", "image", "missing_output")


@requires_extra("nst")
def test_nodeflow_convert_round_trips_through_workflows_and_api_prompts(cli, tmp_path):
    graph = load(GRAPHS / "nst_quick.json")
    graph["defaults"] = {"device": "cpu"}
    graph["nodes"]["optimize"]["device"] = "cpu"
    src = tmp_path / "g.json"
    src.write_text(json.dumps(graph))
    for to in ("workflow", "api"):
        r = cli("convert", str(src), str(tmp_path / f"{to}.json"), "--to", to)
        assert r.returncode == 0, r.stderr
        r = cli("convert", str(tmp_path / f"{to}.json"), str(tmp_path / f"back-{to}.json"))
        assert r.returncode == 0 and f"back-{to}.json: graph" in r.stdout
        back = json.loads((tmp_path / f"back-{to}.json").read_text())
        assert back["defaults"] == {"device": "cpu"} and back["nodes"]["optimize"]["device"] == "cpu"
        assert back["title"] == graph["title"] and list(back["nodes"]) == list(graph["nodes"])
    assert json.loads((tmp_path / "back-api.json").read_text()) == graph
    assert cli("validate", str(tmp_path / "back-workflow.json")).returncode == 0
    again = cli("convert", str(src), str(tmp_path / "api.json"))
    assert again.returncode == 2 and "--force" in again.stderr  # nothing is overwritten silently
    (tmp_path / "junk.json").write_text('{"a": 1}')
    bad = cli("convert", str(tmp_path / "junk.json"), str(tmp_path / "out.json"))
    assert bad.returncode == 2 and "not a nodeflow graph" in bad.stderr
