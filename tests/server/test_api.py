"""The HTTP API end to end, against a real uvicorn server in a subprocess."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import struct
import zlib

import pytest
from PIL import Image
from support.paths import ASSETS
from support.server_harness import (
    ROOT,
    Server,
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
def server(tmp_path_factory):
    # Small limits so the limit tests stay small.
    srv = Server(
        tmp_path_factory.mktemp("api") / "data",
        env={
            "NODEFLOW_MAX_UPLOAD_MB": "2",
            "NODEFLOW_MAX_BODY_KB": "256",
            "NODEFLOW_MAX_UPLOAD_MPIX": "1",
            "NODEFLOW_DOWNLOADS": "0",
        },
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def astronaut(client):
    return upload(client)


def edges_graph() -> dict:
    return json.loads((ROOT / "graphs" / "edges.json").read_text())


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


@pytest.mark.parametrize(
    "graph, overrides, expected",
    [
        ({"nodes": {"a": {"type": "Nope"}}}, {}, [("unknown_type", "a", None)]),
        (
            {
                "nodes": {
                    "load": {"type": "LoadImage", "inputs": {"path": "x.png", "max_size": 2}},
                    "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "quality": 500}},
                }
            },
            {},
            [("value_too_small", "load", "max_size"), ("value_too_large", "save", "quality")],
        ),
        (
            {"nodes": {"save": {"type": "Save", "inputs": {"image": {"from": "gone.image"}}}}},
            {},
            [("missing_node", "save", "image")],
        ),
        ({"nodes": {"a": {"typo": "Save"}}}, {}, [("invalid_structure", "a", None)]),
        ({"nodes": {"save": {"type": "Save"}}}, {"nobody.filename": "x.png"}, [("unknown_node", "nobody", "filename")]),
        (
            {"nodes": {"x": {"type": "os.system", "inputs": {"command": "touch /tmp/pwned"}}}},
            {},
            [("unknown_type", "x", None)],
        ),
    ],
    ids=["unknown-type", "bad-values", "dangling-link", "bad-structure", "bad-override", "no-code-by-name"],
)
def test_invalid_graphs_get_422_with_per_node_issues_and_are_never_queued(client, graph, overrides, expected):
    before = client.get("/jobs").json()["counts"]
    r = client.post("/jobs", json={"graph": graph, "overrides": overrides})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_graph"
    got = {(i["code"], i["node"], i["input"]) for i in body["issues"]}
    assert set(expected) <= got, body["issues"]
    assert all(i["message"] for i in body["issues"])
    assert client.get("/jobs").json()["counts"] == before


def test_a_bad_request_body_gets_422_too(client):
    r = client.post("/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["issues"][0]["code"] == "invalid_json"
    r = client.post("/jobs", json={"graph": small_graph("x.png"), "overrides": "load.path=y"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_paths_escaping_the_input_and_output_dirs_are_refused(server, client, astronaut, tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(secret)
    os.symlink(secret, server.data_dir / "inputs" / "escape.png")
    for path in ["../jobs.sqlite", "/etc/passwd", str(secret), "escape.png", "sub/../../jobs.sqlite"]:
        r = client.post("/jobs", json={"graph": small_graph(path)})
        assert r.status_code == 422, (path, r.text)
        issue = r.json()["issues"][0]
        assert (issue["node"], issue["input"]) == ("load", "path")
        assert "inputs/" in issue["message"], issue["message"]
    for name in ["../escape.png", "../../outputs.png", "/tmp/escape.png", "a/../../b.png"]:
        r = client.post("/jobs", json={"graph": small_graph(astronaut, filename=name)})
        assert r.status_code == 422, (name, r.text)
        issue = r.json()["issues"][0]
        assert (issue["code"], issue["node"], issue["input"]) == ("invalid_input", "save", "filename")
    # A plain sub-directory is fine, and lands inside the job's own outputs.
    job = wait_job(client, submit(client, small_graph(astronaut, filename="sub/ok.png")))
    assert job["status"] == "succeeded" and job["outputs"][0]["name"] == "sub/ok.png"
    assert client.get(job["outputs"][0]["url"]).status_code == 200
    # Downloads serve only the files a job listed.
    assert client.get(f"/jobs/{job['id']}/outputs/../../jobs.sqlite").status_code == 404
    assert client.get(f"/jobs/{job['id']}/outputs/%2e%2e/%2e%2e/jobs.sqlite").status_code == 404


def test_a_listed_output_that_now_leads_outside_the_job_dir_is_not_served(server, client, astronaut, tmp_path):
    job = wait_job(client, submit(client, small_graph(astronaut, filename="linked/out.png")))
    assert job["status"] == "succeeded" and client.get(job["outputs"][0]["url"]).status_code == 200
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "out.png").write_bytes(b"not the job's file")
    folder = server.data_dir / "outputs" / job["id"] / "linked"
    shutil.rmtree(folder)
    os.symlink(outside, folder)  # the listed name now resolves outside the job's outputs
    r = client.get(job["outputs"][0]["url"])
    assert r.status_code == 404 and b"not the job's file" not in r.content


def test_download_urls_must_be_http_and_can_be_turned_off(client, astronaut):
    def load(path, url):
        graph = small_graph(path)
        graph["nodes"]["load"]["inputs"].update(url=url, sha256="0" * 64)
        return client.post("/jobs", json={"graph": graph})

    r = load("missing.png", "file:///etc/passwd")  # would read a server file, and leak its hash
    assert r.status_code == 422
    assert [(i["code"], i["node"], i["input"]) for i in r.json()["issues"]] == [("url_refused", "load", "url")]
    r = load("missing.png", "https://example.com/a.png")  # this server runs with $NODEFLOW_DOWNLOADS=0
    assert r.status_code == 422 and r.json()["issues"][0]["code"] == "downloads_off"
    assert load(astronaut, "https://example.com/a.png").status_code == 202  # the file is here: no download


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


def test_uploads_are_limited_checked_and_named_by_the_server(server, client):
    with open(ASSETS / "chelsea.png", "rb") as f:
        data = f.read()
    r = client.post("/uploads", files={"file": ("../../evil name.png", data, "image/png")})
    assert r.status_code == 201
    name = r.json()["name"]
    assert "/" not in name and ".." not in name and name.endswith(".png")
    assert (server.data_dir / "inputs" / name).read_bytes() == data
    again = client.post("/uploads", files={"file": ("other.png", data, "image/png")}).json()
    assert again["sha256"] == r.json()["sha256"]

    r = client.post("/uploads", files={"file": ("x.png", b"#!/bin/sh\nrm -rf /\n", "image/png")})
    assert r.status_code == 415 and r.json()["error"] == "not_an_image"
    r = client.post("/uploads", files={"file": ("big.png", os.urandom(3 << 20), "image/png")})
    assert r.status_code == 413  # the server's upload limit is 2 MB here
    r = client.post("/uploads", files={"file": ("bomb.png", _png_header_claiming(60000, 60000), "image/png")})
    assert r.status_code == 413 and "megapixel" in r.json()["message"]
    assert not any(p.name.startswith(("bomb", "big", "x-")) for p in (server.data_dir / "inputs").iterdir())


def test_the_servers_own_megapixel_limit_holds_far_below_pillows(client):
    """$NODEFLOW_MAX_UPLOAD_MPIX is 1 here; Pillow's own bomb guard starts near 179 megapixels."""

    def png(width: int, height: int) -> bytes:
        buf = io.BytesIO()
        Image.new("L", (width, height)).save(buf, "PNG")
        return buf.getvalue()

    r = client.post("/uploads", files={"file": ("edge.png", png(1000, 1000), "image/png")})
    assert r.status_code == 201 and (r.json()["width"], r.json()["height"]) == (1000, 1000)  # exactly the limit
    r = client.post("/uploads", files={"file": ("over.png", png(1000, 1001), "image/png")})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "image_too_large" and "1000x1001, over the 1 megapixel limit" in r.json()["message"]


def test_request_bodies_are_limited(client):
    huge = {"graph": small_graph("x.png"), "overrides": {"load.path": "x" * (300 << 10)}}
    r = client.post("/jobs", json=huge)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"graph": {"nodes": {}}, "overrides": {"a.b": "'
        for _ in range(40):
            yield b"x" * 10240
        yield b'"}}'

    r = client.post("/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_catalogue_bundled_graphs_schema_and_health(client):
    nodes = {n["type"]: n for n in client.get("/nodes").json()}
    assert {"LoadImage", "Save", "Sobel", "Grid", "SlowInvert"} <= set(nodes)
    assert nodes["Save"]["inputs"]["quality"] == {**nodes["Save"]["inputs"]["quality"], "minimum": 1, "maximum": 100}
    assert nodes["Save"]["output_node"] is True
    assert client.get("/nodes/Sobel").json()["outputs"]["magnitude"]["type"] == "IMAGE"
    assert client.get("/nodes/Nope").status_code == 404

    graphs = {g["name"]: g for g in client.get("/graphs").json()}
    assert graphs["edges"]["title"] == "Edge views"
    assert client.get("/graphs/edges").json() == edges_graph()
    assert client.get("/graphs/..%2Fpyproject").status_code == 404

    schema = client.get("/schema").json()
    assert "node_LoadImage" in schema["$defs"]
    api = client.get("/openapi.json").json()
    submit_schema = api["components"]["schemas"]["SubmitRequest"]
    assert submit_schema["properties"]["graph"]["$ref"].endswith("/Graph")
    assert "NodeSpec" in api["components"]["schemas"]
    # ...and each node type's inputs, from the node schemas, plugins included
    slow = api["components"]["schemas"]["node_SlowInvert"]["properties"]["inputs"]["properties"]
    assert slow["steps"]["anyOf"][0]["maximum"] == 10000
    assert slow["image"]["$ref"] == "#/components/schemas/link"

    health = client.get("/health").json()
    assert health["status"] == "ok" and health["workers"] == 1 and health["auth"] is False


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


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
