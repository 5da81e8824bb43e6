"""The HTTP API's streams against the shared live server (a real uvicorn process): job
events over SSE (progress, previews, reconnects, cancels) and over the WebSocket."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image
from support.paths import GRAPHS
from support.server_harness import (
    events,
    open_gate,
    slow_graph,
    small_graph,
    submit,
    upload,
    wait_job,
    wait_node_started,
)


@pytest.fixture(scope="module")
def server(live_server):
    return live_server


@pytest.fixture(scope="module")
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def astronaut(client):
    return upload(client)


def edges_graph() -> dict:
    return json.loads((GRAPHS / "edges.json").read_text())


def test_edges_graph_streams_progress_and_its_output_downloads(client, astronaut):
    r = client.post(
        "/jobs", json={"graph": edges_graph(), "overrides": {"load.path": astronaut}, "client_id": "test-edges"}
    )
    assert r.status_code == 202
    body = r.json()
    job_id = body["job_id"]
    assert body["status"] == "queued" and body["events_url"] == f"/jobs/{job_id}/events"

    seen = list(events(client, body["events_url"]))
    kinds = [e["event"] for e in seen]
    assert kinds[0] == "job_queued" and kinds[-1] == "job_finished"
    assert seen[-1]["status"] == "succeeded"
    assert all(e["job_id"] == job_id for e in seen)
    started = {e["node"] for e in seen if e["event"] == "node_started"}
    finished = {e["node"] for e in seen if e["event"] == "node_finished"}
    assert started == finished == {"load", "sobel", "high_pass", "detail", "grid", "save"}
    assert kinds.index("run_started") < kinds.index("node_started") < kinds.index("run_finished")
    save_done = next(e for e in seen if e["event"] == "node_finished" and e["node"] == "save")
    assert save_done["outputs"] == ["edges.png"]  # a name to download, not a server path

    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["client_id"] == "test-edges"
    assert {n: s["state"] for n, s in job["nodes"].items()} == dict.fromkeys(started, "ran")
    assert all(s["seconds"] > 0 and s["cached"] is False for s in job["nodes"].values())
    assert job["outputs"] == [{"node": "save", "name": "edges.png", "url": f"/jobs/{job_id}/outputs/edges.png"}]

    r = client.get(job["outputs"][0]["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "PNG" and im.width > 512
        assert json.loads(im.info["nodeflow:graph"])["nodes"]["load"]["inputs"]["path"] == astronaut

    # A reconnecting EventSource sends Last-Event-ID and gets only what it missed.
    with client.stream("GET", body["events_url"], headers={"Last-Event-ID": str(seen[2]["seq"])}) as r:
        ids = [int(line[4:]) for line in r.iter_lines() if line.startswith("id: ")]
    assert ids == [e["seq"] for e in seen[3:]]

    listed = client.get("/jobs", params={"client_id": "test-edges"}).json()
    assert [j["id"] for j in listed["jobs"]] == [job_id]
    assert listed["counts"]["succeeded"] >= 1


def test_the_same_graph_again_is_served_from_the_cache(client, astronaut):
    graph = edges_graph()
    first = wait_job(client, submit(client, graph, overrides={"load.path": astronaut}))
    assert first["status"] == "succeeded"
    job_id = submit(client, graph, overrides={"load.path": astronaut})
    seen = list(events(client, f"/jobs/{job_id}/events"))
    cached = {e["node"]: e["source"] for e in seen if e["event"] == "node_cached"}
    assert cached["grid"] == "memory"  # the executor and its caches are shared across jobs
    assert {e["node"] for e in seen if e["event"] == "node_started"} == {"save"}

    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["nodes"]["grid"] == {**job["nodes"]["grid"], "state": "cached", "cached": True, "source": "memory"}
    assert job["nodes"]["load"]["cached"] and job["nodes"]["load"]["source"] == "downstream"
    assert job["nodes"]["save"]["state"] == "ran"  # its side effect is the point
    assert client.get(job["outputs"][0]["url"]).status_code == 200


def test_cancel_a_running_job_stops_it_at_its_next_check(client, astronaut, tmp_path):
    job_id = submit(client, slow_graph(astronaut, gate=tmp_path / "never"))  # runs until cancelled
    stream = events(client, f"/jobs/{job_id}/events")
    for e in stream:
        if e["event"] == "node_started" and e["node"] == "slow":
            break
    r = client.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelling"
    rest = list(stream)
    assert rest[-1]["event"] == "job_finished" and rest[-1]["status"] == "cancelled"
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "cancelled"
    assert job["nodes"]["slow"]["state"] == "cancelled" and job["nodes"]["save"]["state"] == "cancelled"
    assert job["outputs"] == []
    assert client.post(f"/jobs/{job_id}/cancel").json()["status"] == "cancelled"  # idempotent


def test_cancel_during_a_model_load_ends_the_job_and_the_server_goes_on(client, astronaut, tmp_path):
    """The load blocks, deaf to cancels, until its gate opens: the job still ends cancelled
    (before the gate opens), and the one worker runs the next job."""
    gate = tmp_path / "loaded"
    graph = {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": astronaut, "max_size": 32}},
            "model": {"type": "GatedLoad", "inputs": {"image": {"from": "load.image"}, "gate": str(gate)}},
            "save": {"type": "Save", "inputs": {"image": {"from": "model.image"}, "filename": "g.png"}},
        }
    }
    job_id = submit(client, graph)
    wait_node_started(client, job_id, "model")
    assert client.post(f"/jobs/{job_id}/cancel").json()["status"] == "cancelling"
    job = wait_job(client, job_id, timeout=60)
    assert job["status"] == "cancelled" and job["nodes"]["model"]["state"] == "cancelled"
    assert not gate.exists()
    after = submit(client, small_graph(astronaut, filename="after-load.png"))
    assert wait_job(client, after)["status"] == "succeeded"
    open_gate(gate)


def test_cancel_a_queued_job_and_previews_stream(client, astronaut, tmp_path):
    gate = tmp_path / "gate"
    running = submit(client, slow_graph(astronaut, steps=40, delay=0, gate=gate))
    stream = events(client, f"/jobs/{running}/events")  # one stream throughout: previews are live-only
    for e in stream:
        if e["event"] == "node_started" and e["node"] == "slow":
            break  # the one worker is held until the gate opens
    queued = submit(client, small_graph(astronaut, filename="never.png"))
    assert client.get(f"/jobs/{queued}").json()["position"] == 0
    r = client.post(f"/jobs/{queued}/cancel")
    assert r.json() == {"job_id": queued, "status": "cancelled"}
    open_gate(gate)
    seen = list(stream)
    assert seen[-1]["status"] == "succeeded"
    previews = [e for e in seen if e["event"] == "node_preview"]
    assert previews, "the slow node sends a preview every step"
    png = base64.b64decode(previews[0]["image"]["base64"])
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and max(im.size) <= 256
    progress = [e for e in seen if e["event"] == "node_progress"]
    assert progress[-1]["value"] == progress[-1]["total"] == 40
    job = client.get(f"/jobs/{queued}").json()
    assert job["status"] == "cancelled" and job["started"] is None and job["nodes"] == {}
    assert client.post("/jobs/nope/cancel").status_code == 404


def test_websocket_carries_the_same_events(server, client, astronaut):
    from websockets.sync.client import connect

    job_id = submit(client, small_graph(astronaut, filename="ws.png", max_size=24))
    with connect(f"ws://127.0.0.1:{server.port}/jobs/ws?job_id={job_id}", open_timeout=30) as ws:
        seen = []
        while not seen or seen[-1]["event"] != "job_finished":
            seen.append(json.loads(ws.recv(timeout=60)))
    assert seen[-1]["status"] == "succeeded"
    assert {"node_started", "node_finished", "run_finished"} <= {e["event"] for e in seen}


def test_all_jobs_stream_sees_every_job(client, astronaut):
    import threading

    got: list[dict] = []
    ids: list[str] = []
    ready = threading.Event()

    def listen():
        with client.stream("GET", "/events", timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    done = {e["job_id"] for e in got if e["event"] == "job_finished"}
                    if len(ids) == 2 and set(ids) <= done:
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(30)
    ids.extend(submit(client, small_graph(astronaut, filename=f"all{i}.png", max_size=20 + i)) for i in range(2))
    t.join(120)
    assert not t.is_alive()
    assert {e["job_id"] for e in got} >= set(ids)
