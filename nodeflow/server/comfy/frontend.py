"""The web editor: the optional comfyui-frontend-package's static files (GPL-3.0, served as
a separate package, never copied here) and the routes its start-up needs: users, settings,
extensions (nodeflow's own: the default workflow), templates (the bundled graphs, laid out
in columns), user data (the workflow browser), system stats and the like."""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import platform
import sys
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from nodeflow import bundled
from nodeflow.comfy.thumbnail import graph_svg
from nodeflow.comfy.workflow import graph_to_workflow
from nodeflow.jobs.config import ServerConfig

from ... import __version__
from ...cache import atomic_write
from ..deps import Config
from .assets import EditorFiles
from .routes import body_json, both
from .websocket import server_features

FRONTEND_PACKAGE = "comfyui_frontend_package"
FRONTEND_PIN = "comfyui-frontend-package==1.58.1"
WEB = Path(__file__).resolve().parent / "web"
DEFAULT_TEMPLATE = "edges"
TEMPLATE_ORDER = ["edges", "nst_quick", "nst_starry", "nst_starry_hq", "nst_tutorial", "hub_starry", "sd_vangogh"]
# Settings a new user starts with: no first-run template dialog (the default workflow is
# a bundled graph already), and no release check: the editor asks api.comfy.org for ComfyUI's
# releases when this is on, the one request it makes at start-up that leaves the server.
DEFAULT_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Notification.ShowVersionUpdates": False}
NOT_INSTALLED = """<!doctype html><html><head><meta charset="utf-8"><title>nodeflow</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>nodeflow {version}</h1>
<p>The web editor is not installed. It is the ComfyUI frontend, a separate GPL-3.0 package:</p>
<pre>pip install "nodeflow[ui]"    # or: pip install {pin}</pre>
<p>then restart <code>nodeflow serve</code>. The HTTP API works without it: see <a href="/docs">/docs</a>.</p>
</body></html>"""


def static_root() -> Path | None:
    """The installed frontend's static folder, or None."""
    spec = importlib.util.find_spec(FRONTEND_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "static"
    return root if (root / "index.html").is_file() else None


def bundled_graphs() -> dict[str, dict]:
    """{name: graph} of the bundled graphs, in TEMPLATE_ORDER first."""
    rank = {name: i for i, name in enumerate(TEMPLATE_ORDER)}
    graphs = bundled.bundled_graphs()
    return {name: graphs[name] for name in sorted(graphs, key=lambda n: (rank.get(n, len(rank)), n))}


def template_index() -> list[dict[str, Any]]:
    templates = [
        {
            "name": name,
            "title": g.get("title") or name,
            "description": g.get("description") or "",
            "mediaType": "image",
            "mediaSubtype": "svg",
        }
        for name, g in bundled_graphs().items()
    ]
    return [
        {"moduleName": "default", "title": "nodeflow", "type": "image", "category": "nodeflow", "templates": templates}
    ]


class Settings:
    """The editor's settings, one JSON file in the data dir."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, Any]:
        try:
            stored = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            stored = {}
        return {**DEFAULT_SETTINGS, **(stored if isinstance(stored, dict) else {})}

    def update(self, values: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps({**self.read(), **values}, indent=1).encode())


def bundled_workflows() -> dict[str, dict]:
    return {name: graph_to_workflow(g) for name, g in bundled_graphs().items()}


def editor_dir(config: ServerConfig) -> Path:
    """The editor's settings and user data, in the data dir."""
    return config.data_dir / "editor"


def settings_of(config: ServerConfig) -> Settings:
    return Settings(editor_dir(config) / "settings.json")


router = APIRouter()


@both(router, "GET", "/users")
def users() -> Any:
    return {"storage": "server", "migrated": True}


@both(router, "GET", "/settings")
def get_settings(config: Config) -> Any:
    return settings_of(config).read()


@both(router, "POST", "/settings")
async def post_settings(request: Request, config: Config) -> Any:
    body = await body_json(request, {})
    if not isinstance(body, dict):
        return JSONResponse({"error": "settings must be a JSON object"}, status_code=400)
    settings_of(config).update(body)
    return Response(status_code=200)


@both(router, "GET", "/settings/{setting_id}")
def get_setting(setting_id: str, config: Config) -> Any:
    return settings_of(config).read().get(setting_id)


@both(router, "POST", "/settings/{setting_id}")
async def post_setting(setting_id: str, request: Request, config: Config) -> Any:
    value = await body_json(request, None)
    if value is ...:
        return JSONResponse({"error": "the value must be JSON"}, status_code=400)
    settings_of(config).update({setting_id: value})
    return Response(status_code=200)


@both(router, "GET", "/extensions")
def extensions() -> Any:
    return ["/nodeflow/nodeflow.js"]


@router.get("/nodeflow/nodeflow.js", include_in_schema=False)
def extension() -> Any:
    return FileResponse(WEB / "nodeflow.js", media_type="text/javascript")


@both(router, "GET", "/features")
def features(config: Config) -> Any:
    return server_features(config.max_upload_bytes)


@both(router, "GET", "/system_stats")
def system_stats() -> Any:
    return {
        "system": {
            "os": sys.platform,
            "python_version": sys.version,
            "embedded_python": False,
            "comfyui_version": f"nodeflow {__version__}",
            "pytorch_version": "",
            "argv": ["nodeflow", "serve"],
            "ram_total": 0,
            "ram_free": 0,
            "installed_templates_version": "",
            "required_templates_version": "",
        },
        "devices": [
            {
                "name": platform.machine() or "cpu",
                "type": "cpu",
                "index": 0,
                "vram_total": 0,
                "vram_free": 0,
                "torch_vram_total": 0,
                "torch_vram_free": 0,
            }
        ],
    }


for path, empty in (
    ("/embeddings", []),
    ("/models", []),
    ("/i18n", {}),
    ("/workflow_templates", {}),
    ("/global_subgraphs", {}),
    ("/experiment/models", []),
):
    both(router, "GET", path)(lambda empty=empty: empty)


@router.get("/user.css", include_in_schema=False)
def user_css() -> Any:
    return Response("", media_type="text/css")


@router.get("/templates/index.json", include_in_schema=False)
def templates() -> Any:
    return template_index()


@router.get("/templates/index_logo.json", include_in_schema=False)
def template_logos() -> Any:
    return {}


@router.get("/templates/{name}.json", include_in_schema=False)
def template(name: str) -> Any:
    graphs = bundled_graphs()
    graph = graphs.get(DEFAULT_TEMPLATE if name == "default" else name)
    if graph is None:
        return JSONResponse({"error": f"no template {name!r}"}, status_code=404)
    return graph_to_workflow(graph)


@router.get("/templates/{name}-1.svg", include_in_schema=False)
def thumbnail(name: str) -> Any:
    graph = bundled_graphs().get(name)
    if graph is None:
        return Response(status_code=404)
    return Response(graph_svg(graph), media_type="image/svg+xml")


def frontend_version() -> str:
    try:
        return importlib.metadata.version(FRONTEND_PACKAGE.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def editor_router(root: Path | None, config: ServerConfig | None = None) -> APIRouter:
    """The editor at / when the frontend is installed (root: its static folder), else a page
    that says how to install it. Include it last: its GET /{path} is matched after every
    other route, as the static files under / always were. With config.editor_caching, files
    are served compressed and with cache headers (see assets.py), compressed copies kept in
    the data dir."""
    router = APIRouter()
    if root is None:

        @router.get("/", include_in_schema=False)
        def install_hint() -> Any:
            return HTMLResponse(NOT_INSTALLED.format(version=html.escape(__version__), pin=FRONTEND_PIN))

        return router
    caching = config is not None and config.editor_caching
    gzip_dir = editor_dir(config) / "compressed" / frontend_version() if config is not None and caching else None
    files = EditorFiles(root, gzip_dir)

    @router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index(request: Request) -> Response:
        response = await files.response("index.html", request)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @router.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static_file(path: str, request: Request) -> Response:
        """A file of the editor, answered as StaticFiles answers it (404 for anything else,
        304 for a copy the browser has), compressed where it pays; other methods get 405,
        as they did from the mount."""
        return await files.response(path, request)

    return router
