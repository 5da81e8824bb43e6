"""Real ComfyUI clients that nobody here wrote, against a real server, with prompts written for
ComfyUI: ComfyScript 0.6.1, comfy-api-simplified 1.6.0, and scripts written the way ComfyUI's
three script_examples are (basic_api_example, websockets_api_example and
websockets_api_example_ws_images). Each client runs in a subprocess with a time limit, so a
client that waits forever fails the test instead of hanging it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

CLIENT_SECONDS = 240


def comfy_prompt(output: dict) -> dict:
    """LoadImage -> ImageScale -> ImageInvert -> the given output node, as ComfyUI's editor
    exports it (titles, the upload button's value)."""
    return {
        "3": {
            "class_type": "LoadImage",
            "inputs": {"image": "astronaut.png", "upload": "image"},
            "_meta": {"title": "Load Image"},
        },
        "4": {
            "class_type": "ImageScale",
            "inputs": {"image": ["3", 0], "upscale_method": "bilinear", "width": 300, "height": 0, "crop": "disabled"},
            "_meta": {"title": "Upscale Image"},
        },
        "5": {"class_type": "ImageInvert", "inputs": {"image": ["4", 0]}, "_meta": {"title": "Invert Image"}},
        **output,
    }


def run_client(code: str, **values) -> str:
    """Runs a client script (values formatted in) from a file (ComfyScript reads its caller's
    source) in its own interpreter; its stdout."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "client.py"
        script.write_text(textwrap.dedent(code).format(**values))
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=CLIENT_SECONDS,
            check=False,
            cwd=folder,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


@pytest.fixture(scope="module")
def base(live_server) -> str:
    return f"http://127.0.0.1:{live_server.port}"


def test_comfyscript_loads_the_catalogue_runs_a_graph_and_gets_preview_images(base):
    out = run_client(
        """
        import json
        from comfy_script.runtime import load, Workflow, util
        load({base!r})
        from comfy_script.runtime.nodes import LoadImage, ImageScale, ImageInvert, SaveImage
        with Workflow(wait=True):
            image, mask = LoadImage('astronaut.png')
            SaveImage(ImageInvert(ImageScale(image, 'bilinear', 48, 0, 'disabled')), 'comfyscript')
        images = util.get_images(ImageInvert(ImageScale(LoadImage('astronaut.png')[0], 'area', 40, 0, 'disabled')))
        print(json.dumps([list(im.size) for im in images]))
        """,
        base=base,
    )
    assert json.loads(out.strip().splitlines()[-1]) == [[40, 40]]


def test_comfy_api_simplified_queues_waits_and_downloads_images(base):
    prompt = comfy_prompt(
        {
            "9": {
                "class_type": "SaveImage",
                "inputs": {"images": ["5", 0], "filename_prefix": "simple"},
                "_meta": {"title": "Save Image"},
            }
        }
    )
    out = run_client(
        """
        import json
        from comfy_api_simplified import ComfyApiWrapper, ComfyWorkflowWrapper
        api = ComfyApiWrapper({base!r})
        wf = ComfyWorkflowWrapper({prompt!r})
        wf.set_node_param("Upscale Image", "width", 64)
        images = api.queue_and_wait_images(wf, "Save Image")
        from PIL import Image
        import io
        print(json.dumps({{name: Image.open(io.BytesIO(data)).size for name, data in images.items()}}))
        """,
        base=base,
        prompt=prompt,
    )
    assert json.loads(out.strip().splitlines()[-1]) == {"simple_00001_.png": [64, 64]}


def test_a_basic_api_example_script_queues_a_comfyui_prompt(base):
    """basic_api_example.py: POST {"prompt": ...} with urllib, nothing else."""
    prompt = comfy_prompt(
        {"9": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "basic"}}}
    )
    reply = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(base + "/prompt", data=json.dumps({"prompt": prompt}).encode())
        ).read()
    )
    prompt_id = reply["prompt_id"]
    deadline = time.monotonic() + CLIENT_SECONDS
    history: dict = {}
    while prompt_id not in history and time.monotonic() < deadline:
        time.sleep(0.2)
        history = json.loads(urllib.request.urlopen(f"{base}/history/{prompt_id}").read())
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success"
    assert entry["outputs"]["9"]["images"] == [
        {"filename": "basic_00001_.png", "subfolder": prompt_id, "type": "output"}
    ]


def test_a_websockets_api_example_script_gets_saved_and_preview_images(base):
    """websockets_api_example.py: queue with a client_id, follow /ws until `executing` with node
    null, then read /history and fetch every image with /view (SaveImage's `output`,
    PreviewImage's `temp`)."""
    prompt = comfy_prompt(
        {
            "9": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "ws_example"}},
            "10": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
        }
    )
    out = run_client(
        """
        import json, urllib.request, urllib.parse, uuid
        import websocket  # websocket-client, as ComfyUI's script examples use
        server = {host!r}
        client_id = str(uuid.uuid4())
        ws = websocket.WebSocket()
        ws.connect("ws://{{}}/ws?clientId={{}}".format(server, client_id))
        data = json.dumps({{"prompt": {prompt!r}, "client_id": client_id}}).encode("utf-8")
        req = urllib.request.Request("http://{{}}/prompt".format(server), data=data)
        prompt_id = json.loads(urllib.request.urlopen(req).read())["prompt_id"]
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["node"] is None and data["prompt_id"] == prompt_id:
                        break
        reply = urllib.request.urlopen("http://{{}}/history/{{}}".format(server, prompt_id)).read()
        history = json.loads(reply)[prompt_id]
        found = {{}}
        for node_id, node_output in history["outputs"].items():
            for image in node_output.get("images", []):
                url = "http://{{}}/view?{{}}".format(server, urllib.parse.urlencode(image))
                found[node_id] = [image["type"], len(urllib.request.urlopen(url).read())]
        print(json.dumps(found))
        """,
        host=base.split("//")[1],
        prompt=prompt,
    )
    found = json.loads(out.strip().splitlines()[-1])
    assert found["9"][0] == "output" and found["10"][0] == "temp"
    assert found["9"][1] > 1000 and found["10"][1] > 1000


def test_a_websockets_image_example_script_gets_the_images_as_frames(base):
    """websockets_api_example_ws_images.py: a SaveImageWebsocket node; the images are the binary
    frames that arrive while `executing` names that node, each `out[8:]` a full-size PNG."""
    prompt = comfy_prompt(
        {"save_image_websocket_node": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["5", 0]}}}
    )
    out = run_client(
        """
        import json, urllib.request, uuid, io
        import websocket  # websocket-client, as ComfyUI's script examples use
        from PIL import Image
        server = {host!r}
        client_id = str(uuid.uuid4())
        ws = websocket.WebSocket()
        ws.connect("ws://{{}}/ws?clientId={{}}".format(server, client_id))
        data = json.dumps({{"prompt": {prompt!r}, "client_id": client_id}}).encode("utf-8")
        req = urllib.request.Request("http://{{}}/prompt".format(server), data=data)
        prompt_id = json.loads(urllib.request.urlopen(req).read())["prompt_id"]
        output_images = {{}}
        current_node = ""
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["prompt_id"] == prompt_id:
                        if data["node"] is None:
                            break
                        current_node = data["node"]
            else:
                if current_node == "save_image_websocket_node":
                    images_output = output_images.get(current_node, [])
                    images_output.append(out[8:])
                    output_images[current_node] = images_output
        print(json.dumps({{k: [list(Image.open(io.BytesIO(i)).size) for i in v] for k, v in output_images.items()}}))
        """,
        host=base.split("//")[1],
        prompt=prompt,
    )
    images = json.loads(out.strip().splitlines()[-1])
    assert images == {"save_image_websocket_node": [[300, 300]]}  # full size, not a 256 px preview
