"""ComfyUI-written prompts with ComfyUI's core nodes, and nodeflow's own, through /prompt; the
queue and history as the editor's queue panel reads them (cancelled, interrupted, the main
image); unique titles in the prompts nodeflow writes."""

from __future__ import annotations

import json

import pytest
from support.inprocess import app_client
from support.paths import GRAPHS
from support.server_harness import wait_job

from nodeflow.comfy import history
from nodeflow.comfy.translate import graph_to_prompt, prompt_to_graph
from nodeflow.comfy.workflow import graph_to_workflow
from nodeflow.jobs import store as st

COMFY_PROMPT = {
    "10": {
        "class_type": "LoadImage",
        "inputs": {"image": "astronaut.png", "upload": "image"},
        "_meta": {"title": "Load Image"},
    },
    "11": {
        "class_type": "ImageScale",
        "inputs": {"image": ["10", 0], "upscale_method": "bicubic", "width": 48, "height": 0, "crop": "disabled"},
    },
    "12": {"class_type": "ImageInvert", "inputs": {"image": ["11", 0]}},
    "13": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "core/ComfyUI"}},
    "14": {"class_type": "PreviewImage", "inputs": {"images": ["11", 0]}},
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with app_client(tmp_path_factory.mktemp("core") / "data") as c:
        yield c


def run_prompt(client, prompt: dict) -> tuple[str, dict]:
    reply = client.post("/prompt", json={"prompt": prompt})
    assert reply.status_code == 200, reply.json()
    prompt_id = reply.json()["prompt_id"]
    assert wait_job(client, prompt_id)["status"] == "succeeded"
    return prompt_id, client.get(f"/history/{prompt_id}").json()[prompt_id]


def test_a_comfyui_prompt_with_core_nodes_runs_unchanged(client):
    prompt_id, entry = run_prompt(client, COMFY_PROMPT)
    assert entry["status"]["status_str"] == "success"
    saved = entry["outputs"]["13"]["images"]
    assert saved == [{"filename": "ComfyUI_00001_.png", "subfolder": f"{prompt_id}/core", "type": "output"}]
    preview = entry["outputs"]["14"]["images"][0]
    assert preview["type"] == "temp" and preview["filename"].startswith("ComfyUI_temp_")
    for ref in (saved[0], preview):
        assert client.get("/view", params=ref).status_code == 200
    # the preview is no job output (nodeflow's jobs API lists what is kept)
    assert [o["name"] for o in client.get(f"/jobs/{prompt_id}").json()["outputs"]] == ["core/ComfyUI_00001_.png"]
    # deleting the job from the history deletes its preview
    assert client.post("/history", json={"delete": [prompt_id]}).status_code == 200
    assert client.get("/view", params=preview).status_code == 404


def test_both_load_images_run_and_the_catalogue_offers_one(client):
    # ComfyUI's: IMAGE then MASK, the mask linked on
    comfy = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "astronaut.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "both"}},
    }
    tr = prompt_to_graph(comfy)
    assert tr.graph["nodes"]["load_image_1"]["type"] == "ComfyLoadImage"
    run_prompt(client, comfy)
    # nodeflow's, by its own input name or by one of its extras
    ours = {
        "1": {"class_type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ours"}},
    }
    assert prompt_to_graph(ours).graph["nodes"]["load_image_1"]["type"] == "LoadImage"
    ours["1"]["inputs"] = {"image": "astronaut.png", "max_size": 32, "url": "", "sha256": "", "upload": "image"}
    graph = prompt_to_graph(ours).graph
    assert graph["nodes"]["load_image_1"] == {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}}
    run_prompt(client, ours)
    info = client.get("/object_info").json()
    assert "ComfyLoadImage" not in info
    load = info["LoadImage"]
    assert load["output"] == ["IMAGE", "MASK"] and load["input_order"]["required"] == ["image"]
    assert load["input"]["required"]["image"][1]["image_upload"] is True
    assert client.get("/object_info/ComfyLoadImage").json() == {}
    # ComfyUI's input order (ComfyScript passes arguments by position)
    assert info["ImageScale"]["input_order"]["required"] == ["image", "upscale_method", "width", "height", "crop"]
    assert info["ImageBlend"]["input_order"]["required"] == ["image1", "image2", "blend_factor", "blend_mode"]
    assert info["SaveImage"]["input"]["required"]["filename_prefix"][1]["default"] == "ComfyUI"


def test_a_nodeflow_graphs_load_image_stays_nodeflows_through_prompts_and_workflows():
    graph = json.loads((GRAPHS / "nst_quick.json").read_text())
    prompt = graph_to_prompt(graph)
    loads = {cid: n for cid, n in prompt.items() if n["class_type"] == "LoadImage"}
    assert loads and all("image" in n["inputs"] and "path" not in n["inputs"] for n in loads.values())
    back = prompt_to_graph(prompt).graph["nodes"]
    for nid, spec in graph["nodes"].items():
        assert back[nid]["type"] == spec["type"] and back[nid]["inputs"] == spec["inputs"]
    # the editor's prompt keeps no nodeflow type, but the workflow's node properties do: even a
    # LoadImage with nothing but its file stays nodeflow's
    for spec in graph["nodes"].values():
        if spec["type"] == "LoadImage":
            spec["inputs"] = {"path": spec["inputs"]["path"]}
    prompt = graph_to_prompt(graph)
    workflow = graph_to_workflow(graph)
    kept = {str(n["id"]): n["properties"]["nodeflow"] for n in workflow["nodes"]}
    editor_prompt = {
        cid: {
            "class_type": n["class_type"],
            "inputs": {**n["inputs"], "upload": "image"} if n["class_type"] == "LoadImage" else n["inputs"],
        }
        for cid, n in prompt.items()
    }
    from nodeflow.comfy.translate import with_workflow_meta

    assert with_workflow_meta(editor_prompt, workflow) and kept
    back = prompt_to_graph(with_workflow_meta(editor_prompt, workflow)).graph["nodes"]
    assert {nid: n["type"] for nid, n in back.items()} == {nid: s["type"] for nid, s in graph["nodes"].items()}


def test_titles_are_node_ids_unless_the_graph_gives_one():
    for path in sorted(GRAPHS.glob("*.json")):
        graph = json.loads(path.read_text())
        prompt = graph_to_prompt(graph)
        titles = [n["_meta"]["title"] for n in prompt.values()]
        assert len(set(titles)) == len(titles), path.name
        workflow = graph_to_workflow(graph)
        assert [n["title"] for n in workflow["nodes"]] == [
            spec.get("title") or nid for nid, spec in graph["nodes"].items()
        ], path.name
        assert prompt_to_graph(prompt).graph["nodes"] == {
            nid: {k: v for k, v in spec.items() if k != "device" or v} for nid, spec in graph["nodes"].items()
        }, path.name
    titled = {"nodes": {"a": {"type": "Sobel", "inputs": {}, "title": "Edges"}, "b": {"type": "Sobel", "inputs": {}}}}
    assert [n["_meta"]["title"] for n in graph_to_prompt(titled).values()] == ["Edges", "b"]


def job(status: str, graph: dict, nodes: dict) -> st.Job:
    return st.Job(
        id="j1",
        status=status,
        client_id=None,
        request={"graph": graph},
        created=1.0,
        started=2.0,
        finished=3.0,
        attempts=1,
        result={"nodes": nodes, "outputs": [], "error": None},
    )


STYLE_GRAPH = {
    "nodes": {
        "load": {"type": "LoadImage", "inputs": {"path": "a.png"}},
        "plot": {"type": "PlotLoss", "inputs": {"history": {"from": "load.image"}}},
        "save_plot": {"type": "Save", "inputs": {"image": {"from": "plot.image"}, "filename": "loss.png"}},
        "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": "result.png"}},
        "save_b": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": "other.png"}},
    }
}
RAN = {
    "save_plot": {"state": "ran", "outputs": ["loss.png"]},
    "save": {"state": "ran", "outputs": ["result.png"]},
    "save_b": {"state": "ran", "outputs": ["other.png"]},
}


def test_the_main_image_is_the_first_saved_result_that_is_no_plot_or_the_declared_one():
    item = history.job_item(job(st.SUCCEEDED, STYLE_GRAPH, RAN))
    assert item["preview_output"]["filename"] == "result.png"  # not the loss plot saved first
    declared = json.loads(json.dumps(STYLE_GRAPH))
    declared["nodes"]["save_b"]["main"] = True
    assert history.job_item(job(st.SUCCEEDED, declared, RAN))["preview_output"]["filename"] == "other.png"
    # the declaration travels through prompts and editor workflows
    prompt = graph_to_prompt(declared)
    assert prompt_to_graph(prompt).graph["nodes"]["save_b"]["main"] is True
    only_plot = {"save_plot": RAN["save_plot"]}
    assert history.job_item(job(st.SUCCEEDED, STYLE_GRAPH, only_plot))["preview_output"]["filename"] == "loss.png"


@pytest.mark.parametrize("status", [st.CANCELLED, st.INTERRUPTED])
def test_cancelled_and_interrupted_jobs_show_as_cancelled(status):
    j = job(status, STYLE_GRAPH, RAN)
    item = history.job_item(j, detail=True)
    assert item["status"] == "cancelled" and item["execution_error"] is None
    entry = history.history_entry(j)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False  # as ComfyUI's
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_interrupted"
    assert status in history.STORE_STATUS["cancelled"]


def test_a_workflow_saved_by_comfyui_converts_to_the_core_nodes():
    from nodeflow.comfy.workflow import workflow_to_graph

    workflow = {
        "nodes": [
            {"id": 1, "type": "LoadImage", "widgets_values": ["astronaut.png", "image"], "outputs": []},
            {"id": 2, "type": "ImageInvert", "inputs": [{"name": "image", "link": 1}], "widgets_values": []},
            {"id": 3, "type": "SaveImage", "inputs": [{"name": "images", "link": 2}], "widgets_values": ["ComfyUI"]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    }
    nodes = workflow_to_graph(workflow)["nodes"]
    assert nodes["load_image_1"] == {"type": "ComfyLoadImage", "inputs": {"image": "astronaut.png"}}
    assert nodes["save_image_3"]["inputs"] == {"filename_prefix": "ComfyUI", "images": {"from": "image_invert_2.IMAGE"}}
