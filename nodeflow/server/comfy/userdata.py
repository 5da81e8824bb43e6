"""The editor's user data (saved workflows, its user.css, ...): files in one folder of the
data dir, every name confined to it. The bundled graphs show in the workflow browser
under workflows/nodeflow/, laid out, until the user saves over them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from nodeflow.jobs.config import ServerConfig

from ..deps import Config
from ..sniff import sniffed_type
from .files import confined, store_bytes
from .frontend import bundled_graphs, bundled_workflows, editor_dir
from .routes import both

BUNDLED_DIR = "workflows/nodeflow"  # the workflow browser lists "workflows" recursively
# Files the editor asks for at start-up; absent, they read as empty.
EMPTY_FILES = {
    "user.css": ("", "text/css"),
    "comfy.templates.json": ("[]", "application/json"),
    "workflows/.index.json": ('{"favorites": []}', "application/json"),
}


def _info(path: Path, root: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "path": path.relative_to(root).as_posix(),
        "size": st.st_size,
        "modified": st.st_mtime,
        "created": st.st_ctime,
    }


def user_dir(config: ServerConfig) -> Path:
    return editor_dir(config) / "userdata"


def virtual(rel: str) -> dict | None:
    """A bundled graph's workflow, where the workflow browser lists it."""
    folder, _, name = rel.rpartition("/")
    if folder != BUNDLED_DIR or not name.endswith(".json"):
        return None
    return bundled_workflows().get(name[:-5])


router = APIRouter()


@both(router, "GET", "/userdata")
def list_files(config: Config, dir: str = "", recurse: str = "", full_info: str = "", split: str = "") -> Any:
    if not dir:
        return JSONResponse({"error": "dir is required"}, status_code=400)
    base = confined(user_dir(config), dir)
    files = [p for p in (base.rglob("*") if recurse == "true" else base.glob("*")) if p.is_file()]
    out: list[Any] = [_info(p, base) if full_info == "true" else p.relative_to(base).as_posix() for p in sorted(files)]
    if dir.strip("/") == "workflows" and recurse == "true":
        shown = {o["path"] if isinstance(o, dict) else o for o in out}
        for rel in (f"nodeflow/{name}.json" for name in bundled_graphs()):
            if rel not in shown:
                out.append({"path": rel, "size": 0, "modified": 0, "created": 0} if full_info == "true" else rel)
    if split == "true" and full_info != "true":
        out = [[p, *p.split("/")] for p in out]
    return out


@router.post("/api/userdata/{file:path}/move/{dest:path}", include_in_schema=False)
@router.post("/userdata/{file:path}/move/{dest:path}", include_in_schema=False)
def move(file: str, dest: str, config: Config, overwrite: str = "true", full_info: str = "false") -> Any:
    root = user_dir(config)
    src, target = confined(root, file), confined(root, dest)
    if not src.is_file():
        return JSONResponse({"error": f"no file {file!r}"}, status_code=404)
    if overwrite == "false" and target.exists():
        return JSONResponse({"error": "File already exists"}, status_code=409)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src, target)
    return _info(target, root) if full_info == "true" else target.relative_to(root).as_posix()


def _user_file_type(path: Path) -> str:
    """JSON as such, images by their content; nothing a browser would run (HTML, SVG, scripts)."""
    import mimetypes

    if path.suffix == ".json":
        return "application/json"
    sniffed = sniffed_type(path)
    if sniffed != "application/octet-stream":
        return sniffed
    guessed = mimetypes.guess_type(path.name)[0] or ""
    return guessed if guessed in ("text/css", "text/plain", "text/csv") else "application/octet-stream"


@both(router, "GET", "/userdata/{file:path}")
def get_file(file: str, config: Config) -> Any:
    path = confined(user_dir(config), file)
    if path.is_file():
        return FileResponse(path, media_type=_user_file_type(path))
    shown = virtual(file)
    if shown is not None:
        return shown
    if file in EMPTY_FILES:
        text, media = EMPTY_FILES[file]
        return Response(text, media_type=media)
    return JSONResponse({"error": f"no file {file!r}"}, status_code=404)


@both(router, "POST", "/userdata/{file:path}")
async def put_file(
    file: str, request: Request, config: Config, overwrite: str = "true", full_info: str = "false"
) -> Any:
    root = user_dir(config)
    path = confined(root, file)
    if overwrite == "false" and path.exists():
        return JSONResponse({"error": "File already exists"}, status_code=409)
    store_bytes(path, await request.body())
    return _info(path, root) if full_info == "true" else path.relative_to(root).as_posix()


@both(router, "DELETE", "/userdata/{file:path}")
def delete_file(file: str, config: Config) -> Any:
    path = confined(user_dir(config), file)
    if not path.is_file():
        return JSONResponse({"error": f"no file {file!r}"}, status_code=404)
    path.unlink()
    return Response(status_code=204)
