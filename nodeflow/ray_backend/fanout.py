"""`nodeflow run GRAPH --sweep ... --ray ADDRESS`: a sweep's variations fanned out over a
Ray cluster, as many at once as it has CPUs (GPUs for variations placed on CUDA).

Each variation runs on the same warm worker actors as the server's jobs do, through
RayBackend.run; its files come back into the CLI's output folder, where an existing
file is never overwritten (same bytes: left alone; else the next numbered name).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nodeflow.context import CancelToken, Settings
from nodeflow.errors import GraphInvalid, Issue
from nodeflow.jobs import store as st
from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.groups import variation_request
from nodeflow.jobs.worker import WorkerLost
from nodeflow.ray_backend.backend import RayBackend, unreachable
from nodeflow.sweeps.contact_sheet import write_new
from nodeflow.sweeps.sweep import Variation


class RayFanout:
    def __init__(self, address: str):
        problem = unreachable(address)
        if problem:
            raise GraphInvalid([Issue("ray_unreachable", f"--ray: {problem}")])
        plugins = [m.strip() for m in os.environ.get("NODEFLOW_PLUGINS", "").split(",") if m.strip()]
        self.config = ServerConfig(
            data_dir=Path(tempfile.mkdtemp(prefix="nodeflow-sweep-")), ray_address=address, plugins=plugins
        )
        try:
            self.backend = RayBackend(self.config, role="run")
        except Exception as exc:  # e.g. a token the cluster doesn't accept
            raise GraphInvalid(
                [
                    Issue(
                        "ray_unavailable",
                        f"--ray: cannot join the Ray cluster at {address!r}: {exc.__class__.__name__}: {exc}",
                    )
                ]
            ) from None
        self._print = threading.Lock()

    @property
    def devices(self) -> dict[str, set[str]] | None:
        return self.config.devices

    def close(self) -> None:
        self.backend.close()
        shutil.rmtree(self.config.data_dir, ignore_errors=True)

    def run(
        self, graph: dict[str, Any], only: list[str] | None, planned: list[tuple[Variation, Any]], settings: Settings
    ) -> tuple[list[dict[str, list[Path]]], str]:
        """Run every variation; (the files each one's nodes wrote, the overall status)."""
        base = {"graph": graph, "overrides": {}, "only": only}
        capacity = self.backend.capacity([plan for _, plan in planned])
        self.backend.pool.size = at_once = max(1, min(len(planned), capacity))
        print(f"nodeflow: {len(planned)} variation(s) on the Ray cluster, {at_once} at once", file=sys.stderr)
        with ThreadPoolExecutor(at_once) as pool:
            results = list(pool.map(lambda vp: self._one(base, vp[0], vp[1], settings, len(planned)), planned))
        status = "failed" if any(s != st.SUCCEEDED for s, _ in results) else "succeeded"
        return [files for _, files in results], status

    def _one(self, base: dict, var: Variation, plan: Any, settings: Settings, total: int) -> tuple[str, dict]:
        request = variation_request(base, var.values)
        where: dict[str, Any] = {}
        for attempt in range(1, st.MAX_ATTEMPTS + 1):
            job = st.Job(
                id=os.urandom(16).hex(),
                status=st.RUNNING,
                client_id=None,
                request=request,
                created=time.time(),
                started=time.time(),
                finished=None,
                attempts=attempt,
                result=None,
            )
            try:
                status, summary = self.backend.run(job, plan, lambda event: None, CancelToken(), where.update)
                break
            except WorkerLost as exc:
                status, summary = st.FAILED, {"outputs": [], "error": {"message": f"its worker died: {exc}"}}
        files: dict[str, list[Path]] = {}
        for o in summary.get("outputs") or []:
            src = self.config.job_output_dir(job.id) / o["name"]
            files.setdefault(o["node"], []).append(write_new(Path(settings.output_dir) / o["name"], src.read_bytes()))
        label = ", ".join(f"{t}={v!r}" for t, v in var.values.items())
        error = (summary.get("error") or {}).get("message")
        with self._print:
            print(
                f"nodeflow: variation {var.index + 1}/{total} ({label}): {status} on {where.get('host')} "
                f"pid {where.get('pid')} (Ray node {str(where.get('ray_node_id'))[:12]})"
                + (f": {error}" if error else "")
                + "".join(f"\n  -> {p}" for ps in files.values() for p in ps),
                file=sys.stderr,
                flush=True,
            )
        return status, files
