"""The editor's files: compressed (gzip, made once into the data dir) for clients that accept
it, hashed assets cached for a year, index.html revalidated with its ETag; and the release
check off by default, so the editor makes no request that leaves the server."""

from __future__ import annotations

import gzip
import importlib.util
import re

import pytest
from support.inprocess import app_client

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("comfyui_frontend_package") is None,
    reason="needs the [ui] extra (comfyui-frontend-package)",
)
GZIP = {"accept-encoding": "gzip, deflate"}
PLAIN = {"accept-encoding": "identity"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with app_client(tmp_path_factory.mktemp("editor") / "data", seed=()) as c:
        yield c


def entry_script(client) -> str:
    page = client.get("/", headers=PLAIN).text
    return re.search(r'src="\./(assets/index-[^"]+\.js)"', page).group(1)


def test_index_is_compressed_and_revalidated_with_its_etag(client):
    plain = client.get("/", headers=PLAIN)
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    packed = client.get("/", headers=GZIP)
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert packed.headers["cache-control"] == "no-cache"
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert packed.content == plain.content  # the client decoded the gzip body
    again = client.get("/", headers={**GZIP, "if-none-match": packed.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/", headers={**PLAIN, "if-none-match": plain.headers["etag"]}).status_code == 304
    assert client.get("/", headers={**GZIP, "if-none-match": '"stale"'}).status_code == 200


def test_hashed_assets_are_immutable_and_compressed_once_into_the_data_dir(client):
    script = entry_script(client)
    packed = client.get("/" + script, headers=GZIP)
    assert packed.status_code == 200 and packed.headers["content-encoding"] == "gzip"
    assert packed.headers["cache-control"] == "public, max-age=31536000, immutable"
    copies = list((client.config.data_dir / "editor" / "compressed").rglob(script.split("/")[-1] + ".gz"))
    assert len(copies) == 1 and gzip.decompress(copies[0].read_bytes()) == packed.content
    assert not [p for p in copies[0].parent.iterdir() if p.name.endswith(".tmp")]  # written atomically
    stamp = copies[0].stat().st_mtime_ns
    assert client.get("/" + script, headers=GZIP).content == packed.content
    assert copies[0].stat().st_mtime_ns == stamp  # not compressed again
    head = client.head("/" + script, headers=GZIP)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-encoding"] == "gzip"
    plain = client.get("/" + script, headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in plain.headers and plain.content == packed.content


def test_unhashed_and_binary_files(client):
    fonts = client.get("/materialdesignicons.min.css", headers=GZIP)
    assert fonts.status_code == 200 and fonts.headers["cache-control"] == "no-cache"
    assert fonts.headers["content-encoding"] == "gzip"
    assert client.get("/assets/no-such-file-12345678.js", headers=GZIP).status_code == 404
    assert client.post("/assets/x.js").status_code == 405
    assert client.get("/..%2F..%2Fpyproject.toml", headers=GZIP).status_code == 404
    # However a request spells a file's path, its compressed copy is named by the file's own path.
    assert client.get("/assets/%2e%2e/assets/..%2Findex.html", headers=GZIP).headers["content-encoding"] == "gzip"
    version_dirs = list((client.config.data_dir / "editor" / "compressed").iterdir())
    assert len(version_dirs) == 1 and not list(version_dirs[0].glob("assets/*.html.gz"))


def test_caching_can_be_turned_off_for_a_baseline(tmp_path):
    with app_client(tmp_path / "data", seed=(), editor_caching=False) as c:
        script = entry_script(c)
        r = c.get("/" + script, headers=GZIP)
        assert r.status_code == 200 and "content-encoding" not in r.headers
        assert "immutable" not in r.headers.get("cache-control", "")
        assert not (c.config.data_dir / "editor" / "compressed").exists()


def test_the_release_check_is_off_unless_the_user_turns_it_on(client):
    assert client.get("/api/settings").json()["Comfy.Notification.ShowVersionUpdates"] is False
    client.post("/api/settings/Comfy.Notification.ShowVersionUpdates", content=b"true")
    assert client.get("/api/settings/Comfy.Notification.ShowVersionUpdates").json() is True
    client.post("/api/settings/Comfy.Notification.ShowVersionUpdates", content=b"false")
