"""Previews (GET /view?...&preview=) share the upload decode limit, decode at reduced size and
are cached per file and size (issue 30, item 1)."""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

from PIL import Image
from support.inprocess import app_client

from nodeflow.server import previews
from nodeflow.server.uploads import DECODES


def test_concurrent_previews_of_a_huge_png_are_bounded_and_cached(tmp_path):
    with app_client(tmp_path / "data", seed=()) as client:
        big = client.config.input_dir / "big.png"
        Image.new("RGB", (7000, 7000), (40, 90, 160)).save(big, "PNG")
        assert big.stat().st_size < 1 << 20  # small on disk, 147 MB decoded
        before = previews.RENDERED[0]
        DECODES.peak = 0
        params = {"filename": "big.png", "type": "input", "preview": "webp;80"}
        with ThreadPoolExecutor(16) as threads:
            replies = list(threads.map(lambda _: client.get("/view", params=params), range(16)))
        assert [r.status_code for r in replies] == [200] * 16
        assert DECODES.peak <= DECODES.limit  # never more decodes at once than the limit
        assert 1 <= previews.RENDERED[0] - before <= DECODES.limit  # the rest came from the cache
        with Image.open(io.BytesIO(replies[0].content)) as im:
            assert im.format == "WEBP" and max(im.size) == previews.PREVIEW_SIDE
        assert len({r.content for r in replies}) == 1

        # cached per file, size and time: another quality is another entry; a changed file, too
        again = previews.RENDERED[0]
        assert client.get("/view", params=params).status_code == 200
        assert previews.RENDERED[0] == again
        assert client.get("/view", params={**params, "preview": "jpeg;70"}).headers["content-type"] == "image/jpeg"
        assert previews.RENDERED[0] == again + 1
        Image.new("RGB", (300, 200), "red").save(big, "PNG")
        later = time.time() + 5
        os.utime(big, (later, later))
        r = client.get("/view", params=params)
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.size == (300, 200)
        assert previews.RENDERED[0] == again + 2


def test_jpeg_previews_decode_at_reduced_size(tmp_path):
    src = tmp_path / "big.jpg"
    Image.new("RGB", (4096, 3072), "green").save(src, "JPEG")
    seen = []
    real_open = Image.open

    def spy(*args, **kwargs):
        im = real_open(*args, **kwargs)
        original = im.draft

        def draft(mode, size):
            result = original(mode, size)
            seen.append(im.size)
            return result

        im.draft = draft
        return im

    Image.open = spy
    try:
        data, media = previews.preview(src, "webp;80", tmp_path / "cache")
    finally:
        Image.open = real_open
    assert media == "image/webp"
    assert seen and max(seen[0]) <= 2048  # the DCT decoded at 1/2 scale or less, not 4096x3072


def test_a_file_that_is_no_image_is_415(tmp_path):
    with app_client(tmp_path / "data", seed=()) as client:
        (client.config.input_dir / "text.png").write_text("not an image")
        r = client.get("/view", params={"filename": "text.png", "type": "input", "preview": "webp;80"})
        assert r.status_code == 415 and "can be previewed" in r.json()["message"]
