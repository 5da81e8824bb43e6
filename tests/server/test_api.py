"""The HTTP API's answers, in-process (support.inprocess: FastAPI's TestClient on
create_app): status codes, JSON bodies, limits, paths and the OpenAPI document. Jobs run on
the app's worker threads here; the streams (SSE, WebSockets) are in test_streaming.py."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zlib

import pytest
from PIL import Image
from support.inprocess import app_client
from support.paths import ASSETS, GRAPHS
from support.server_harness import small_graph, submit, upload, wait_job


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # Small limits so the limit tests stay small.
    with app_client(
        tmp_path_factory.mktemp("api") / "data",
        max_upload_bytes=2 << 20,
        max_body_bytes=256 << 10,
        max_upload_pixels=1_000_000,
        allow_downloads=False,
    ) as c:
        yield c


@pytest.fixture(scope="module")
def data_dir(client):
    return client.config.data_dir


@pytest.fixture(scope="module")
def astronaut(client):
    return upload(client)


def edges_graph() -> dict:
    return json.loads((GRAPHS / "edges.json").read_text())


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


def test_paths_escaping_the_input_and_output_dirs_are_refused(data_dir, client, astronaut, tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(secret)
    os.symlink(secret, data_dir / "inputs" / "escape.png")
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


def test_a_listed_output_that_now_leads_outside_the_job_dir_is_not_served(data_dir, client, astronaut, tmp_path):
    job = wait_job(client, submit(client, small_graph(astronaut, filename="linked/out.png")))
    assert job["status"] == "succeeded" and client.get(job["outputs"][0]["url"]).status_code == 200
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "out.png").write_bytes(b"not the job's file")
    folder = data_dir / "outputs" / job["id"] / "linked"
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
    r = load("missing.png", "https://example.com/a.png")  # this app runs with downloads off
    assert r.status_code == 422 and r.json()["issues"][0]["code"] == "downloads_off"
    assert load(astronaut, "https://example.com/a.png").status_code == 202  # the file is here: no download


def test_uploads_are_limited_checked_and_named_by_the_server(data_dir, client):
    with open(ASSETS / "chelsea.png", "rb") as f:
        data = f.read()
    r = client.post("/uploads", files={"file": ("../../evil name.png", data, "image/png")})
    assert r.status_code == 201
    name = r.json()["name"]
    assert "/" not in name and ".." not in name and name.endswith(".png")
    assert (data_dir / "inputs" / name).read_bytes() == data
    again = client.post("/uploads", files={"file": ("other.png", data, "image/png")}).json()
    assert again["sha256"] == r.json()["sha256"]

    r = client.post("/uploads", files={"file": ("x.png", b"#!/bin/sh\nrm -rf /\n", "image/png")})
    assert r.status_code == 415 and r.json()["error"] == "not_an_image"
    r = client.post("/uploads", files={"file": ("big.png", os.urandom(3 << 20), "image/png")})
    assert r.status_code == 413  # the upload limit is 2 MB here
    r = client.post("/uploads", files={"file": ("bomb.png", _png_header_claiming(60000, 60000), "image/png")})
    assert r.status_code == 413 and "megapixel" in r.json()["message"]
    assert not any(p.name.startswith(("bomb", "big", "x-")) for p in (data_dir / "inputs").iterdir())


def test_the_servers_own_megapixel_limit_holds_far_below_pillows(client):
    """The upload limit is 1 megapixel here ($NODEFLOW_MAX_UPLOAD_MPIX); Pillow's own bomb
    guard starts near 179 megapixels."""

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


def test_the_openapi_document_declares_auth_and_error_answers(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    submit = spec["paths"]["/jobs"]["post"]
    assert {"401", "413", "422"} <= set(submit["responses"]) and submit["security"][0] == {"bearerAuth": []}
    assert {"401", "413", "422"} <= set(spec["paths"]["/uploads"]["post"]["responses"])
    assert "401" in spec["paths"]["/jobs"]["get"]["responses"]
    assert "security" not in spec["paths"]["/health"]["get"]


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
