"""CI, step 2: an installed wheel, outside any checkout, serves its bundled graphs (GET /graphs,
the editor's templates), and without torch answers a style-transfer graph with a 422 that names
the extra. Run with the fresh venv's python, from a folder outside the checkout."""

import sys
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

import nodeflow
from nodeflow.jobs.config import ServerConfig
from nodeflow.server.app import create_app

assert "site-packages" in nodeflow.__file__, f"not the installed package: {nodeflow.__file__}"
with tempfile.TemporaryDirectory() as tmp:
    app = create_app(ServerConfig(data_dir=Path(tmp)))
    with TestClient(app, base_url="http://127.0.0.1:8188") as client:
        names = {g["name"] for g in client.get("/graphs").json()}
        assert {"edges", "nst_starry"} <= names, names
        templates = {t["name"] for t in client.get("/templates/index.json").json()[0]["templates"]}
        assert names == templates, (names, templates)
        assert client.get("/templates/nst_starry.json").status_code == 200
        r = client.post("/jobs", json={"graph": client.get("/graphs/nst_quick").json()})
        assert r.status_code == 422, r.text
        message = r.json()["issues"][0]["message"]
        assert "nodeflow[nst]" in message, message
print(f"installed nodeflow: {len(names)} bundled graphs in GET /graphs and the editor; without torch: {message}")
sys.exit(0)
