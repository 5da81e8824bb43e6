"""Prompts the editor queues from a workflow with subgraphs: it flattens each subgraph's nodes
into ids like "12:5" (the subgraph node's id, then the inner node's). Such ids are kept both
ways: validation errors, `executing`, `progress`, `executed`, previews and the history name
the inner node by its flattened id. And "run selected outputs" (partial_execution_targets)
runs only what the targets need, flattened ids included."""

from __future__ import annotations

import json
import struct
import uuid

import pytest
from support.inprocess import app_client

# LoadImage outside; inside subgraph 12: SlowInvert (5) -> Save (6); outside again: a Save of
# the loaded image (3), which a partial run that targets 12:6 must leave alone.
PROMPT = {
    "1": {"class_type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}},
    "12:5": {"class_type": "SlowInvert", "inputs": {"image": ["1", 0], "steps": 3, "delay": 0.3}},
    "12:6": {"class_type": "Save", "inputs": {"image": ["12:5", 0], "filename": "inner.png"}},
    "3": {"class_type": "Save", "inputs": {"image": ["1", 0], "filename": "outer.png"}},
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with app_client(tmp_path_factory.mktemp("subgraph") / "data") as c:
        yield c


def test_validation_errors_are_keyed_by_the_flattened_inner_id(client):
    missing = json.loads(json.dumps(PROMPT))
    del missing["12:5"]["inputs"]["image"]
    r = client.post("/prompt", json={"prompt": missing})
    assert r.status_code == 400
    errors = r.json()["node_errors"]
    assert list(errors) == ["12:5"] and errors["12:5"]["class_type"] == "SlowInvert"
    assert errors["12:5"]["errors"][0]["type"] == "required_input_missing"
    assert errors["12:5"]["errors"][0]["extra_info"]["input_name"] == "image"
    dangling = json.loads(json.dumps(PROMPT))
    dangling["12:6"]["inputs"]["image"] = ["12:9", 0]  # a link to an inner node that isn't there
    errors = client.post("/prompt", json={"prompt": dangling}).json()["node_errors"]
    assert list(errors) == ["12:6"] and errors["12:6"]["errors"][0]["extra_info"]["input_name"] == "image"


def test_partial_targets_may_be_flattened_ids_and_must_be_in_the_prompt(client):
    bad = client.post("/prompt", json={"prompt": PROMPT, "partial_execution_targets": ["12:7"]})
    assert bad.status_code == 400 and "partial_execution_targets" in bad.json()["error"]["message"]


def test_a_flattened_subgraph_runs_its_inner_nodes_and_reports_them_by_their_ids(live_server):
    from websockets.sync.client import connect

    client_id = str(uuid.uuid4())
    texts: list[dict] = []
    previews: list[dict] = []
    with (
        live_server.client() as http,
        connect(f"ws://127.0.0.1:{live_server.port}/ws?clientId={client_id}", open_timeout=30, max_size=None) as ws,
    ):
        ws.recv(timeout=30)  # status
        ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        body = {"prompt": PROMPT, "client_id": client_id, "partial_execution_targets": ["12:6"]}
        reply = http.post("/prompt", json=body)
        assert reply.status_code == 200, reply.text
        prompt_id = reply.json()["prompt_id"]
        while True:
            out = ws.recv(timeout=120)
            if isinstance(out, bytes):
                if out[:4] == b"\x00\x00\x00\x04":
                    (size,) = struct.unpack(">I", out[4:8])
                    previews.append(json.loads(out[8 : 8 + size]))
                continue
            m = json.loads(out)
            if m["data"].get("prompt_id") != prompt_id:
                continue
            texts.append(m)
            if m["type"] == "executing" and m["data"]["node"] is None:
                break
        history = http.get(f"/history/{prompt_id}").json()[prompt_id]

    def nodes(kind: str) -> list[str]:
        return [m["data"]["node"] for m in texts if m["type"] == kind and m["data"]["node"]]

    ran = set(nodes("executing")) | {n for m in texts if m["type"] == "execution_cached" for n in m["data"]["nodes"]}
    assert "12:5" in nodes("executing") and "12:6" in ran
    assert "3" not in ran  # not needed by the selected output
    assert set(nodes("progress")) == {"12:5"}
    assert {p["node_id"] for p in previews} == {"12:5"} and previews[0]["display_node_id"] == "12:5"
    executed = {m["data"]["node"]: m["data"]["output"] for m in texts if m["type"] == "executed"}
    assert list(executed) == ["12:6"] and executed["12:6"]["images"][0]["filename"] == "inner.png"
    assert list(history["outputs"]) == ["12:6"]
    assert history["prompt"][2] == PROMPT and history["prompt"][4] == ["12:6"]
