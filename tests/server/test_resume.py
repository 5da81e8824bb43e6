"""A long job killed with its server resumes from its checkpoint after the restart, without
--requeue-interrupted (it holds a checkpoint), and its checkpoint goes when it ends."""

from __future__ import annotations

import io
import json
import time

import pytest
from support.nst_graphs import tiny
from support.server_harness import submit, upload, wait_job

pytest.importorskip("torch")

STEPS = 60


def progress(client, job_id: str) -> float:
    node = client.get(f"/jobs/{job_id}").json().get("nodes", {}).get("opt") or {}
    return (node.get("progress") or [0, 1])[0]


def test_a_server_killed_mid_job_resumes_it_from_the_checkpoint(own_server):
    from PIL import Image

    srv = own_server(env={"NODEFLOW_CHECKPOINT_SECONDS": "0"}).start()
    with srv.client() as c:
        graph = tiny(steps=STEPS, preview_every=0)
        content, style = upload(c, "astronaut.png"), upload(c, "starry_night.jpg")
        graph["nodes"]["content"]["inputs"]["path"] = content
        graph["nodes"]["style"]["inputs"]["path"] = style
        graph["nodes"]["save"]["inputs"]["metadata"] = {"from": "opt.info"}
        job_id = submit(c, graph)
        deadline = time.monotonic() + 240
        while (done := progress(c, job_id)) < 0.7 * STEPS:
            assert time.monotonic() < deadline, f"the job is at step {done} after 240 s"
            assert c.get(f"/jobs/{job_id}").json()["status"] in ("queued", "waiting", "running")
            time.sleep(0.05)
    srv.kill()
    assert any((srv.data_dir / "checkpoints" / job_id).glob("*.ckpt"))
    srv.start()  # no --requeue-interrupted: the checkpoint is enough
    with srv.client() as c:
        job = wait_job(c, job_id, timeout=240)
        assert job["status"] == "succeeded" and job["attempts"] == 2, job
        png = c.get(job["outputs"][0]["url"]).content
    info = json.loads(Image.open(io.BytesIO(png)).text["nodeflow:metadata"])
    assert info["steps"] == STEPS
    # killed at step >= 42 with a checkpoint after every step: at most a step or two redone
    assert info["resumed_from_step"] >= 0.7 * STEPS - 2
    assert not (srv.data_dir / "checkpoints" / job_id).exists()  # removed when the job ended
    assert "re-queued" in srv.log.read_text()
