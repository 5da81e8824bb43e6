"""An abuse set against the real server: every probe gets a clear 4xx (or the job a clear
failure), never a 500, and the server stays up."""

from __future__ import annotations

import http.server
import io
import threading
import time

import httpx
import pytest
from support.extras import requires_extra
from support.server_harness import small_graph, submit, upload, wait_job

SHA = "ab" * 32


@pytest.fixture(scope="module")
def server(servers):
    """A live server of the abuse set's own (downloads off: the default): the set ends by
    checking that it is still up and logged no traceback."""
    return servers.shared(name="abuse")


@pytest.fixture(scope="module")
def downloading(servers):
    return servers.shared("--allow-downloads", name="abuse")


@pytest.fixture(scope="module")
def mirror(servers):
    """Downloads on, and the operator allows its own mirror on a private address."""
    return servers.shared("--allow-downloads", env={"NODEFLOW_DOWNLOAD_ALLOW_PRIVATE": "1"}, name="abuse")


class Site:
    """A local HTTP server: counts hits; /slow dribbles bytes; /to-ftp redirects to ftp://.
    `streaming` is set once /slow has sent its first bytes, `dropped` once its client hung up."""

    def __init__(self):
        self.hits: list[str] = []
        self.streaming = threading.Event()
        self.dropped = threading.Event()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                site.hits.append(self.path)
                if self.path.startswith("/to-ftp"):
                    self.send_response(302)
                    self.send_header("Location", "ftp://127.0.0.1/astronaut.png")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(10**6))
                self.end_headers()
                try:
                    for _ in range(600):  # 60 000 of the million bytes promised, over a minute
                        self.wfile.write(b"x" * 100)
                        self.wfile.flush()
                        site.streaming.set()
                        time.sleep(0.1)
                except OSError:
                    site.dropped.set()

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture(scope="module")
def local_site():
    site = Site()
    threading.Thread(target=site.http.serve_forever, daemon=True).start()
    yield site
    site.http.shutdown()
    site.http.server_close()


def download_graph(path: str, url: str) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": path, "url": url, "sha256": SHA}},
            "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}},
        }
    }


def post_raw(client: httpx.Client, body: str | bytes, path: str = "/jobs") -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def issues_of(r: httpx.Response) -> list[dict]:
    assert r.status_code == 422, r.text[:500]
    return r.json()["issues"]


def located(r: httpx.Response, node: str | None, input: str | None, code: str) -> dict:
    found = [i for i in issues_of(r) if (i["node"], i["input"], i["code"]) == (node, input, code)]
    assert found, r.text[:1000]
    return found[0]


GRAPH_TEXT = (
    '{"graph": {"nodes": {"load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", '
    '"max_size": %s}}, "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}}}}}'
)


@pytest.mark.parametrize(
    "value,code",
    [
        ("NaN", "not_finite"),
        ("Infinity", "not_finite"),
        ("-Infinity", "not_finite"),
        ("1e999", "not_finite"),
        ("9" * 5000, "int_too_long"),
    ],
)
def test_numbers_json_cannot_carry(server, value, code):
    with server.client() as c:
        issue = located(post_raw(c, GRAPH_TEXT % value), "load", "max_size", code)
        assert len(issue["message"]) < 400


def test_deep_nesting_anywhere(server):
    with server.client() as c:
        located(post_raw(c, GRAPH_TEXT % ("[" * 100 + "]" * 100)), "load", "max_size", "too_deep")
        r = post_raw(c, GRAPH_TEXT % ("[" * 100_000 + "]" * 100_000))  # past the parser's recursion limit
        assert r.status_code in (413, 422)  # 200 kB: under the 1 MB body limit, so 422
        assert issues_of(r)[0]["code"] == "too_deep"
        located(
            post_raw(c, '{"graph": {"nodes": {}}, "client_id": ' + "[" * 5000 + "]" * 5000 + "}"),
            None,
            None,
            "too_deep",
        )


def test_duplicate_keys_and_lone_surrogates(server):
    with server.client() as c:
        body = (
            '{"graph": {"nodes": {"load": {"type": "LoadImage", "inputs": {"path": "a.png", "path": "b.png"}},'
            '"load": {"type": "LoadImage", "inputs": {"path": "a.png"}}}}}'
        )
        r = post_raw(c, body)
        located(r, "load", "path", "duplicate_key")
        located(r, "load", None, "duplicate_key")
        r = post_raw(c, '{"graph": {"title": "\\ud800", "nodes": {}}}')
        assert issues_of(r)[0]["code"] == "invalid_text"
        r = post_raw(c, '{"graph": {"nodes": {}}, "client_id": "\\udfff"}')
        assert issues_of(r)[0]["code"] == "invalid_text"
        assert post_raw(c, b'{"graph": "\xff"}').status_code == 422


def test_nul_bytes_and_long_names(server):
    with server.client() as c:
        name = upload(c)
        for field, value, code in [
            ("path", "astro\u0000naut.png", "invalid_file_name"),
            ("path", "a" * 300 + ".png", "invalid_file_name"),
            ("path", "a/" * 2100 + "x.png", "invalid_file_name"),
        ]:
            graph = small_graph(name)
            graph["nodes"]["load"]["inputs"][field] = value
            located(c.post("/jobs", json={"graph": graph}), "load", field, code)
        for filename in ("x\u0000.png", "a" * 252 + ".png", "/etc/x.png", "../x.png", "a\nb.png"):
            r = c.post("/jobs", json={"graph": small_graph(name, filename=filename)})
            issue = [i for i in issues_of(r) if i["node"] == "save"][0]
            assert issue["input"] == "filename"


def test_every_problem_at_once_without_server_paths(server):
    with server.client() as c:
        graph = {
            "defaults": {"device": "cuda:abc"},
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "missing.png"}, "device": ""},
                "unused": {"type": "LoadImage", "inputs": {"path": "gone.png"}},
                "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": "x" * 500_000}},
            },
        }
        r = c.post("/jobs", json={"graph": graph})
        got = {(i["node"], i["input"], i["code"]) for i in issues_of(r)}
        assert {
            ("load", "device", "invalid_device"),
            (None, None, "invalid_device"),
            ("load", "path", "invalid_input"),
            ("unused", "path", "invalid_input"),
            ("save", "filename", "invalid_file_name"),
        } <= got
        assert len(r.content) < 20_000
        assert str(server.data_dir) not in r.text and "/inputs/" not in r.text.replace('"inputs/', "")


@requires_extra("nst", "hub", "sd")
@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "~/.ssh/id_rsa"])
def test_files_a_graph_loads_stay_inside_the_inputs(server, name):
    """weights, a local TF Hub handle, an SD model or config: 422 by node and input, nothing queued."""
    with server.client() as c:
        image = {"from": "load.image"}
        graph = {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": upload(c), "max_size": 32}},
                "vgg": {"type": "VGGFeatures", "inputs": {"model": "vgg16", "weights": name}},
                "hub": {
                    "type": "HubStylize",
                    "inputs": {"content": image, "style": image, "model_source": "tfhub", "handle": name},
                },
                "sd": {"type": "SDImg2Img", "inputs": {"image": image, "prompt": "x", "model": name}},
                "save": {"type": "Save", "inputs": {"image": {"from": "hub.image"}}},
            }
        }
        before = c.get("/jobs").json()["jobs"]
        r = c.post("/jobs", json={"graph": graph})
        for node, input in (("vgg", "weights"), ("hub", "handle"), ("sd", "model")):
            assert "inside inputs/" in located(r, node, input, "invalid_input")["message"]
        assert str(server.data_dir) not in r.text and str(server.data_dir.resolve()) not in r.text
        assert c.get("/jobs").json()["jobs"] == before


def test_list_routes_refuse_out_of_range_numbers(server):
    with server.client() as c:
        for query in (
            "offset=9223372036854775808",
            "offset=-1",
            "limit=0",
            "limit=100000",
            "offset=" + "9" * 5000,
            "offset=abc",
        ):
            r = c.get(f"/jobs?{query}")
            assert r.status_code == 422, query
        assert c.get("/jobs?offset=1000000").json()["jobs"] == []


def test_downloads_are_off_by_default(server):
    with server.client() as c:
        graph = download_graph("fresh.png", "https://example.com/fresh.png")
        located(c.post("/jobs", json={"graph": graph}), "load", "url", "downloads_off")


def test_ssrf_to_a_local_port_is_refused(downloading, local_site):
    base, hits = local_site.base, local_site.hits
    before = len(hits)
    with downloading.client() as c:
        for url in (
            f"{base}/secret",
            "http://localhost:9/x",
            "http://[::1]:22/x",
            "http://169.254.169.254/x",
            "http://10.1.2.3/x",
            "file:///etc/passwd",
            "ftp://example.com/x",
        ):
            located(c.post("/jobs", json={"graph": download_graph("fresh.png", url)}), "load", "url", "url_refused")
    assert len(hits) == before


def test_a_redirect_to_another_scheme_fails_the_job_clearly(mirror, local_site):
    base = local_site.base
    with mirror.client() as c:
        r = c.post("/jobs", json={"graph": download_graph("r.png", f"{base}/to-ftp")})
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["job_id"], timeout=60)
        assert job["status"] == "failed" and job["error"]["input"] == "url"
        assert "only http(s)" in job["error"]["message"] and str(mirror.data_dir) not in job["error"]["message"]


def test_a_slow_download_is_cancelled(mirror, local_site):
    with mirror.client() as c:
        job_id = submit(c, download_graph("slow.png", f"{local_site.base}/slow"))
        assert local_site.streaming.wait(60), "the download never started"
        assert c.post(f"/jobs/{job_id}/cancel").json()["status"] in ("cancelling", "cancelled")
        job = wait_job(c, job_id, timeout=60)
        assert job["status"] == "cancelled" and job["nodes"]["load"]["state"] == "cancelled"
        # The server hung up in the middle of the stream: the download stopped, not read to its end.
        assert local_site.dropped.wait(60), "the server kept reading the cancelled download"
        assert not list((mirror.data_dir / "downloads").rglob("*slow*"))


def _big_png(side: int = 7000) -> bytes:
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    rgb = np.stack(
        [
            np.broadcast_to(ramp, (side, side)),
            np.broadcast_to(ramp[:, None], (side, side)),
            np.full((side, side), 90, np.uint8),
        ],
        axis=-1,
    )
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_concurrent_big_uploads_stay_under_a_gibibyte(server):
    data = _big_png()
    assert len(data) < 25 << 20
    results = []

    def send(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=300) as c:
            r = c.post("/uploads", files={"file": (f"big{i}.png", data, "image/png")})
            results.append(r.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert results == [201] * 16
    peak = _peak_rss_mib(server.proc.pid)
    print(f"server peak RSS with 16 concurrent 7000x7000 PNG uploads: {peak:.0f} MiB")
    assert peak < 1024


def test_the_server_is_still_up_and_logged_no_traceback(server):
    with server.client() as c:
        assert c.get("/health").status_code == 200
        job_id = c.post("/jobs", json={"graph": small_graph(upload(c), filename="after.png")}).json()["job_id"]
        assert wait_job(c, job_id)["status"] == "succeeded"
    assert "Traceback" not in server.log.read_text()


def test_the_data_folder_is_private(server):
    import stat

    with server.client() as c:
        name = upload(c)
        job_id = c.post("/jobs", json={"graph": small_graph(name, filename="private.png")}).json()["job_id"]
        assert wait_job(c, job_id)["status"] == "succeeded"
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)
    assert mode(server.data_dir) == 0o700
    for path in [
        server.data_dir / "jobs.sqlite",
        server.data_dir / "inputs" / name,
        server.data_dir / "outputs" / job_id / "private.png",
    ]:
        assert mode(path) == 0o600, path
    assert mode(server.data_dir / "outputs" / job_id) == 0o700
