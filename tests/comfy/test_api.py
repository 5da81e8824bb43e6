"""ComfyUI's API: route shapes (a few recorded ones), prompts, uploads, history and the
workflow browser in-process (support.inprocess); a client written like ComfyUI's websocket
example script, the queue with its interrupts, and the socket's Origin check against the
shared live server."""

from __future__ import annotations

import io
import json
import struct
import urllib.parse
import urllib.request
import uuid

import pytest
from PIL import Image
from support.inprocess import app_client
from support.paths import ASSETS
from support.server_harness import small_graph, submit, upload, wait_job

# The edges graph as ComfyUI's "Export (API)" writes it: numeric ids, links by output index.
EDGES_PROMPT = {
    "1": {"class_type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 64}},
    "2": {"class_type": "Sobel", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "HighPass", "inputs": {"image": ["1", 0], "mode": "diff"}},
    "5": {
        "class_type": "Grid",
        "inputs": {
            "image1": ["1", 0],
            "label1": "image",
            "image2": ["2", 0],
            "image3": ["3", 0],
            "columns": 3,
            "cell_height": 64,
        },
    },
    "6": {"class_type": "Save", "inputs": {"image": ["5", 0], "filename": "edges.png"}},
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The API in-process (its inputs hold astronaut.png), for route shapes and answers."""
    with app_client(tmp_path_factory.mktemp("comfy") / "data") as c:
        yield c


@pytest.fixture(scope="module")
def server(live_server):
    """The shared live server, for the WebSocket."""
    return live_server


@pytest.fixture(scope="module")
def live(server):
    with server.client() as c:
        yield c


def ws_connect(server, client_id):
    from websockets.sync.client import connect

    return connect(f"ws://127.0.0.1:{server.port}/ws?clientId={client_id}", open_timeout=30, max_size=None)


def test_a_comfyui_websocket_example_client_runs_the_edges_prompt(server):
    """Like ComfyUI's websockets_api_example.py: urllib POSTs (JSON labelled as a form),
    follow /ws until `executing` with node null, then /history and /view."""
    base = f"http://127.0.0.1:{server.port}"
    client_id, prompt_id = str(uuid.uuid4()), str(uuid.uuid4())
    with ws_connect(server, client_id) as ws:
        first = json.loads(ws.recv(timeout=30))
        assert first["type"] == "status" and first["data"]["sid"] == client_id
        data = json.dumps({"prompt": EDGES_PROMPT, "client_id": client_id, "prompt_id": prompt_id}).encode()
        reply = json.loads(urllib.request.urlopen(urllib.request.Request(base + "/prompt", data=data)).read())
        assert reply == {"prompt_id": prompt_id, "number": reply["number"], "node_errors": {}}
        seen = []
        while True:
            out = ws.recv(timeout=120)
            if isinstance(out, str):
                message = json.loads(out)
                seen.append(message["type"])
                if (
                    message["type"] == "executing"
                    and message["data"]["node"] is None
                    and message["data"]["prompt_id"] == prompt_id
                ):
                    break
    assert {"status", "execution_start", "executing", "executed"} <= set(seen)
    assert seen.index("execution_success") < len(seen) - 1
    history = json.loads(urllib.request.urlopen(f"{base}/history/{prompt_id}").read())[prompt_id]
    assert history["status"]["status_str"] == "success" and history["status"]["completed"] is True
    assert history["prompt"][1:3] == [prompt_id, EDGES_PROMPT]
    image = history["outputs"]["6"]["images"][0]
    assert image == {"filename": "edges.png", "subfolder": prompt_id, "type": "output"}
    png = urllib.request.urlopen(f"{base}/view?{urllib.parse.urlencode(image)}").read()
    with Image.open(io.BytesIO(png)) as im:
        assert im.size[1] == 64 + 2 * 8 + 28  # one labelled row of 64 px cells, padded
        chunk = json.loads(im.info["prompt"])  # renumbered in graph order
        assert [n["class_type"] for n in chunk.values()] == [n["class_type"] for n in EDGES_PROMPT.values()]
        assert {n["type"] for n in json.loads(im.info["workflow"])["nodes"]} == {
            "LoadImage",
            "Sobel",
            "HighPass",
            "Grid",
            "Save",
        }


def test_route_shapes(client):
    info = client.get("/object_info/Sobel").json()
    assert list(info) == ["Sobel"] and info["Sobel"]["output_name"] == ["magnitude", "x", "y"]
    assert client.get("/api/object_info").json().keys() >= {"LoadImage", "Save", "AdamOptimize"}
    assert client.get("/api/users").json() == {"storage": "server", "migrated": True}
    assert client.get("/api/extensions").json() == ["/nodeflow/nodeflow.js"]
    assert (
        client.post("/api/settings/Comfy.Locale", content=b'"en"', headers={"content-type": "text/plain"}).status_code
        == 200
    )
    assert client.get("/api/settings").json()["Comfy.Locale"] == "en"
    assert client.get("/prompt").json() == {"exec_info": {"queue_remaining": 0}}
    assert set(client.get("/api/system_stats").json()) == {"system", "devices"}
    assert client.get("/api/queue").json() == {"queue_running": [], "queue_pending": []}
    templates = client.get("/templates/index.json").json()
    assert [t["name"] for t in templates[0]["templates"]][:1] == ["edges"]
    workflow = client.get("/templates/edges.json").json()
    assert {n["type"] for n in workflow["nodes"]} == {"LoadImage", "Sobel", "HighPass", "Grid", "Save"}
    assert client.get("/templates/edges-1.svg").headers["content-type"].startswith("image/svg")


def test_invalid_prompts_get_node_errors_and_are_never_queued(client):
    bad = json.loads(json.dumps(EDGES_PROMPT))
    bad["3"]["inputs"]["gain"] = -1
    r = client.post("/api/prompt", json={"prompt": bad})
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["3"]["errors"][0]["extra_info"]["input_name"] == "gain"
    assert body["node_errors"]["3"]["class_type"] == "HighPass"
    r = client.post("/prompt", json={"prompt": EDGES_PROMPT, "prompt_id": "../escape"})
    assert r.status_code == 400 and "prompt_id" in r.json()["error"]["message"]
    assert client.post("/prompt", json={"client_id": "x"}).json()["error"]["type"] == "no_prompt"
    assert client.get("/prompt").json()["exec_info"]["queue_remaining"] == 0


def test_queue_delete_and_interrupt(server, live):
    name = upload(live)
    slow = {
        "1": {"class_type": "LoadImage", "inputs": {"path": name, "max_size": 16}},
        "2": {"class_type": "SlowInvert", "inputs": {"image": ["1", 0], "steps": 400, "delay": 0.05}},
        "3": {"class_type": "Save", "inputs": {"image": ["2", 0], "filename": "slow.png"}},
    }
    with ws_connect(server, "interrupter") as ws:
        running = live.post("/prompt", json={"prompt": slow, "client_id": "interrupter"}).json()["prompt_id"]
        pending = live.post("/prompt", json={"prompt": slow, "client_id": "interrupter"}).json()["prompt_id"]
        wait_job(live, running, until={"running"})
        queue = live.get("/queue").json()
        assert [q[1] for q in queue["queue_running"]] == [running]
        assert [q[1] for q in queue["queue_pending"]] == [pending]
        assert queue["queue_pending"][0][3]["client_id"] == "interrupter"
        assert live.post("/queue", json={"delete": [pending]}).status_code == 200
        preview = ws.recv(timeout=60)
        while not isinstance(preview, bytes):  # the running node's first preview
            preview = ws.recv(timeout=60)
        assert live.post("/interrupt", json={"prompt_id": running}).status_code == 200
        kinds = []
        while "execution_interrupted" not in kinds:
            out = ws.recv(timeout=60)
            if isinstance(out, str):
                kinds.append(json.loads(out)["type"])
    assert struct.unpack(">II", preview[:8]) == (1, 2)  # a script gets type-1 PNG previews
    Image.open(io.BytesIO(preview[8:])).verify()
    assert wait_job(live, running)["status"] == "cancelled"
    assert live.get(f"/jobs/{pending}").json()["status"] == "cancelled"
    jobs = live.get("/api/jobs", params={"status": "cancelled"}).json()
    assert {j["id"] for j in jobs["jobs"]} >= {running, pending}
    assert all(j["status"] == "cancelled" for j in jobs["jobs"])
    assert jobs["pagination"]["total"] >= 2


def test_jobs_from_the_nodeflow_api_show_in_queue_history_and_jobs(client):
    job_id = submit(client, small_graph(upload(client), filename="from-jobs.png"))
    assert wait_job(client, job_id)["status"] == "succeeded"
    entry = client.get(f"/history/{job_id}").json()[job_id]
    assert entry["prompt"][2]["1"]["class_type"] == "LoadImage"  # numbered in graph order
    assert entry["outputs"]["2"]["images"] == [{"filename": "from-jobs.png", "subfolder": job_id, "type": "output"}]
    assert job_id in client.get("/history", params={"max_items": 50}).json()
    item = client.get(f"/api/jobs/{job_id}").json()
    assert item["status"] == "completed" and item["outputs_count"] == 1
    assert item["preview_output"]["nodeId"] == "2" and item["preview_output"]["filename"] == "from-jobs.png"
    assert isinstance(item["create_time"], int) and item["execution_end_time"] >= item["execution_start_time"]


def test_view_and_upload_stay_inside_their_folders(client):
    with open(ASSETS / "astronaut.png", "rb") as f:
        data = f.read()
    r = client.post("/upload/image", files={"image": ("my photo.png", data, "image/png")})
    assert r.status_code == 200 and r.json() == {"name": "my photo.png", "subfolder": "", "type": "input"}
    again = client.post("/api/upload/image", files={"image": ("my photo.png", data, "image/png")}).json()
    assert again["name"] == "my photo.png"  # the same bytes: stored once
    other = client.post("/upload/image", files={"image": ("my photo.png", data[:-16] + b"\0" * 16, "image/png")})
    assert other.status_code == 415  # not a readable image: refused, nothing overwritten
    assert client.get("/view", params={"filename": "my photo.png", "type": "input"}).content == data
    assert client.get("/view", params={"filename": "my photo.png [input]"}).content == data
    for params in (
        {"filename": "../jobs.sqlite", "type": "input"},
        {"filename": "x.png", "subfolder": "../.."},
        {"filename": "/etc/passwd"},
    ):
        assert client.get("/view", params=params).status_code in (400, 403)
    assert (
        client.post(
            "/upload/image", files={"image": ("x.png", data, "image/png")}, data={"subfolder": "../outside"}
        ).status_code
        == 400
    )


def test_a_foreign_origin_can_not_queue_a_prompt_or_open_the_socket(server, live):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    evil = {"Origin": "http://evil.example"}
    r = live.post("/prompt", json={"prompt": EDGES_PROMPT}, headers=evil)
    assert r.status_code == 403
    with pytest.raises(InvalidStatus):
        with connect(f"ws://127.0.0.1:{server.port}/ws?clientId=x", open_timeout=30, additional_headers=evil):
            pass
    own = {"Origin": server.url}  # the editor's own page passes
    assert (
        live.post("/prompt", json={"prompt": {"1": {"class_type": "Nope", "inputs": {}}}}, headers=own).status_code
        == 400
    )


def test_history_delete_and_clear(client):
    job_id = submit(client, small_graph(upload(client), filename="gone.png"))
    assert wait_job(client, job_id)["status"] == "succeeded"
    assert client.post("/history", json={"delete": [job_id]}).status_code == 200
    assert client.get(f"/history/{job_id}").json() == {}
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert client.post("/api/history", json={"clear": True}).status_code == 200
    assert client.get("/history").json() == {}


def test_without_the_frontend_the_root_says_how_to_install_it(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from nodeflow.jobs.config import ServerConfig
    from nodeflow.server.app import create_app
    from nodeflow.server.comfy import frontend

    monkeypatch.setattr(frontend, "static_root", lambda: None)
    with TestClient(create_app(ServerConfig(data_dir=tmp_path)), base_url="http://127.0.0.1") as c:
        page = c.get("/")
        assert page.status_code == 200 and 'pip install "nodeflow[ui]"' in page.text
        assert c.get("/api/object_info/Save").json()["Save"]["output_node"] is True  # the API still works


def test_partial_execution_runs_only_what_the_targets_need(client):
    prompt = json.loads(json.dumps(EDGES_PROMPT))
    prompt["7"] = {"class_type": "Save", "inputs": {"image": ["2", 1], "filename": "sobel_x.png"}}
    r = client.post("/prompt", json={"prompt": prompt, "partial_execution_targets": ["7"]})
    prompt_id = r.json()["prompt_id"]
    assert wait_job(client, prompt_id)["status"] == "succeeded"
    entry = client.get(f"/history/{prompt_id}").json()[prompt_id]
    assert list(entry["outputs"]) == ["7"] and entry["prompt"][4] == ["7"]
    bad = client.post("/prompt", json={"prompt": prompt, "partial_execution_targets": ["99"]})
    assert bad.status_code == 400 and "partial_execution_targets" in bad.json()["error"]["message"]


def test_the_workflow_browser_lists_saved_and_bundled_workflows(client):
    listed = client.get("/api/userdata", params={"dir": "workflows", "recurse": "true", "full_info": "true"}).json()
    assert {"nodeflow/edges.json", "nodeflow/nst_starry.json"} <= {f["path"] for f in listed}
    bundled = client.get("/api/userdata/workflows%2Fnodeflow%2Fedges.json").json()
    assert bundled["extra"]["nodeflow"]["title"] == "Edge views"
    body = json.dumps(bundled).encode()
    assert client.post("/api/userdata/workflows%2Fmine.json", content=body).json() == "workflows/mine.json"
    assert client.post("/api/userdata/workflows%2Fmine.json?overwrite=false", content=body).status_code == 409
    assert client.get("/api/userdata/workflows%2Fmine.json").json() == bundled
    assert client.post("/api/userdata/workflows%2Fmine.json/move/workflows%2Fours.json").json() == "workflows/ours.json"
    assert client.delete("/api/userdata/workflows%2Fours.json").status_code == 204
    assert client.get("/api/userdata/workflows%2Fours.json").status_code == 404
    assert client.get("/api/userdata/..%2F..%2Fjobs.sqlite").status_code in (400, 403)
    assert client.post("/api/userdata/..%2Fescape.json", content=b"{}").status_code in (400, 403)
