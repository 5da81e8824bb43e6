"""ComfyUI's routes under abuse (issue 30): every bad name, preview spec, body and disk
state is a 4xx (or 507) that says what is wrong, never a 500, and costs the log no traceback."""

from __future__ import annotations

import io
import json
import logging

import pytest
from PIL import Image
from support.inprocess import app_client
from support.tmpfs import fill, small_disk


def _png(w: int = 8, h: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "red").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def client(tmp_path):
    with app_client(tmp_path) as c:
        c.raise_server_exceptions = False
        yield c


def _upload(client, name="x.png", data=None, **fields):
    return client.post("/upload/image", files={"image": (name, data or _png())}, data=fields)


def _view(client, **params):
    return client.get("/view", params={"type": "input", **params})


def _error_text(r) -> str:
    body = r.json()
    return json.dumps(body)


CASES = {
    "nul in filename": (lambda c: _view(c, filename="a\0b.png"), 400, "NUL byte"),
    "nul in subfolder": (lambda c: _upload(c, subfolder="a\0b"), 400, "NUL byte"),
    "filename of 5000": (lambda c: _view(c, filename="a" * 5000), 400, "limited to"),
    "subfolder 3000 deep": (lambda c: _upload(c, subfolder="/".join(["a"] * 3000)), 400, "can't name a file"),
    "subfolder 1500 deep": (lambda c: _upload(c, subfolder="/".join(["a"] * 1500)), 400, "folders deep"),
    "superscript quality": (lambda c: _view(c, filename="astronaut.png", preview="webp;²"), 400, "1 to 100"),
    "huge quality": (
        lambda c: _view(c, filename="astronaut.png", preview="webp;99999999999999999999"),
        400,
        "1 to 100",
    ),
    "subfolder is a file": (lambda c: _upload(c, subfolder="astronaut.png"), 409, "existing file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_names_are_4xx_with_a_message(client, case, caplog):
    call, status, text = CASES[case]
    with caplog.at_level(logging.INFO):
        r = call(client)
    assert r.status_code == status, r.text
    assert text in _error_text(r)
    # a client's error costs the server's log at most a line, and never a traceback
    server = [rec for rec in caplog.records if not rec.name.startswith("httpx")]
    assert not [rec for rec in server if rec.exc_info], [rec.getMessage()[:200] for rec in server]
    assert len(server) <= 1 and sum(len(rec.getMessage()) for rec in server) < 500


def test_upload_over_an_existing_folder_is_409(client):
    (client.config.input_dir / "dir.png").mkdir()
    r = _upload(client, name="dir.png", overwrite="true")
    assert r.status_code == 409 and "existing folder" in r.text


def test_long_upload_name_is_cut(client):
    r = _upload(client, name="y" * 400 + ".png")
    assert r.status_code == 200, r.text
    assert len(r.json()["name"]) <= 200 and r.json()["name"].endswith(".png")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded"])
def test_deeply_nested_prompt_is_refused_with_where(client, ctype):
    deep = b"[" * 100_000 + b"]" * 100_000
    r = client.post("/prompt", content=deep, headers={"content-type": ctype})
    assert r.status_code == 422, r.text
    issue = r.json()["issues"][0]
    assert issue["code"] == "too_deep" and "line 1, column 65" in issue["message"]
    assert len(r.json()["issues"]) == 1


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/json"])
@pytest.mark.parametrize(
    "body,code",
    [
        (b'{"prompt": {"1": {"class_type": "Invert", "inputs": {"a": NaN}}}}', "not_finite"),
        (b'{"prompt": {"1": {"class_type": "Invert", "inputs": {"a": 1e400}}}}', "not_finite"),
        (b'{"prompt": {}, "prompt": {"1": {}}}', "duplicate_key"),
    ],
)
def test_every_prompt_body_gets_the_strict_json_checks(client, ctype, body, code):
    r = client.post("/prompt", content=body, headers={"content-type": ctype})
    assert r.status_code == 422, r.text
    assert [i["code"] for i in r.json()["issues"]] == [code]


def test_workflow_extra_that_is_not_an_object(client):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"path": "astronaut.png"}}}
    body = {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": {"extra": "s"}}}}
    r = client.post("/prompt", content=json.dumps(body), headers={"content-type": "text/plain"})
    assert r.status_code == 400, r.text
    assert "no output node" in r.text


@pytest.mark.parametrize("bad", ["abc\n", "abc\r", "a/b", " abc", "a" * 129])
def test_prompt_id_is_matched_whole(client, bad):
    r = client.post("/prompt", json={"prompt": {}, "prompt_id": bad})
    assert r.status_code == 400, r.text
    assert "prompt_id names a folder" in r.text


def test_files_are_served_as_what_they_hold(client):
    assert _upload(client, name="x.svg").status_code == 200
    r = _view(client, filename="x.svg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    (client.config.input_dir / "page.png").write_text("<script>alert(1)</script>")
    r = _view(client, filename="page.png")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = _view(client, filename="astronaut.png", preview="webp;50")
    assert r.headers["content-type"] == "image/webp" and r.headers["x-content-type-options"] == "nosniff"


def test_415_names_no_memory_address(client):
    r = _upload(client, data=b"hello, not an image")
    assert r.status_code == 415
    assert " at 0x" not in r.text and "BytesIO" not in r.text


@pytest.mark.parametrize("path,allow", [("/prompt", "GET, HEAD, OPTIONS, POST"), ("/upload/image", "OPTIONS, POST")])
def test_options_names_the_methods(client, path, allow):
    for p in (path, "/api" + path):
        r = client.options(p)
        assert r.status_code == 204
        assert r.headers["allow"] == allow


def test_upload_to_a_full_disk_is_507_then_works_again(tmp_path):
    with small_disk(tmp_path / "data", "2m") as data:
        with app_client(data, seed=()) as client:
            client.raise_server_exceptions = False
            image = Image.effect_noise((400, 400), 64).convert("RGB")
            buf = io.BytesIO()
            image.save(buf, "PNG")
            filler = fill(data, leave=4096)
            r = _upload(client, name="noise.png", data=buf.getvalue())
            assert r.status_code == 507, r.text
            assert "disk is full" in r.text
            assert not list(client.config.input_dir.glob("*.tmp")) and not list(client.config.input_dir.glob(".*"))
            filler.unlink()
            r = _upload(client, name="noise.png", data=buf.getvalue())
            assert r.status_code == 200, r.text


def test_user_files_are_never_served_as_markup(client):
    page = "<html><script>alert(1)</script></html>"
    assert client.post("/api/userdata/page.html", content=page).status_code == 200
    r = client.get("/api/userdata/page.html")
    assert r.status_code == 200 and r.text == page
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.post("/api/userdata/workflows/w.json", content="{}").status_code == 200
    assert client.get("/api/userdata/workflows%2Fw.json").headers["content-type"] == "application/json"


def test_user_files_under_a_file_are_409(client):
    assert client.post("/api/userdata/plain.txt", content="x").status_code == 200
    r = client.post("/api/userdata/plain.txt%2Finside.json", content="{}")
    assert r.status_code == 409, r.text


def test_a_last_event_id_of_other_digits_replays_everything(client):
    from support.server_harness import small_graph, submit, wait_job

    job_id = submit(client, small_graph("astronaut.png"))
    assert wait_job(client, job_id)["status"] == "succeeded"
    r = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": b"\xb2"})  # "²" in Latin-1
    assert r.status_code == 200 and "job_finished" in r.text
