"""Sweep groups, for the HTTP API. `POST /jobs` with a `sweep` object validates every variation
through the normal planner and queues one ordinary job per variation, all linked to
one group record in the store. When the group's last job ends, its contact sheets
are drawn from the jobs' output files into outputs/<group id>/. Its routes are the
server's (nodeflow/server/routers/groups.py).
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import relative_name
from nodeflow.jobs.config import ServerConfig
from nodeflow.sweeps import contact_sheet
from nodeflow.sweeps.sweep import Axis, axes_from_mapping, plan_sweep


def variation_request(request: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A job request for one variation: its values override the graph and tag its outputs."""
    return {**request, "overrides": {**(request.get("overrides") or {}), **values}, "sweep": values}


def _target(target: str) -> tuple[str, str]:
    """ "node.input" -> (node, input)."""
    node, input_name = target.split(".", 1)
    return node, input_name


class Groups:
    def __init__(
        self, config: ServerConfig, store: st.JobStore, plan_request: Callable[[ServerConfig, str, dict], Any]
    ):
        self.config, self.store, self.plan_request = config, store, plan_request
        self._lock = threading.Lock()  # one thread draws a group's sheets

    def submit(self, request: dict[str, Any], sweep: dict[str, Any], client_id: str | None) -> tuple[str, list[st.Job]]:
        """Validate the whole sweep, then queue its jobs. Raises GraphInvalid (nothing queued)."""
        axes, issues = axes_from_mapping(sweep)
        probe_id = os.urandom(16).hex()
        planned = plan_sweep(
            (axes, issues),
            lambda v: self.plan_request(self.config, probe_id, variation_request(request, v.values)),
            self.config.sweep_limit,
        )
        group_id = os.urandom(16).hex()
        requests = [(os.urandom(16).hex(), variation_request(request, var.values)) for var, _ in planned]
        described = [{"target": a.target, "values": list(a.values)} for a in axes]
        return group_id, self.store.add_group(group_id, described, requests, client_id)

    def job_ended(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is not None and job.group_id:
            self.finish_if_done(job.group_id)

    def finish_if_done(self, group_id: str) -> None:
        """Draw the contact sheets once every job of the group has ended."""
        with self._lock:
            group = self.store.group(group_id)
            if group is None or group["finished"] is not None:
                return
            jobs = self.store.group_jobs(group_id)
            if any(j.status not in st.FINISHED for j in jobs):
                return
            result: dict[str, Any] = {"contact_sheets": []}
            try:
                out_dir = self.config.job_output_dir(group_id)
                axes = [Axis(*_target(a["target"]), tuple(a["values"])) for a in group["sweep"]]
                for sheet in contact_sheet.sheets_for(axes, [self._written(j) for j in jobs], out_dir):
                    name = relative_name(sheet["path"], out_dir)
                    result["contact_sheets"].append(
                        {
                            "node": sheet["node"],
                            "name": name,
                            "url": f"/groups/{group_id}/outputs/{name}",
                            "layout": sheet["layout"],
                        }
                    )
            except Exception as exc:  # a sheet that can't be drawn must not lose the group
                traceback.print_exc()
                result["error"] = f"{exc.__class__.__name__}: {exc}"
            self.store.finish_group(group_id, result)

    def _written(self, job: st.Job) -> dict[str, list[Path]]:
        files: dict[str, list[Path]] = {}
        if job.status == st.SUCCEEDED:
            for o in (job.result or {}).get("outputs") or []:
                files.setdefault(o["node"], []).append(self.config.job_output_dir(job.id) / o["name"])
        return files

    def describe(self, group_id: str) -> dict[str, Any] | None:
        """The group, its jobs and its contact sheets; None if there is no such group."""
        group = self.store.group(group_id)
        if group is None:
            return None
        jobs = self.store.group_jobs(group_id)
        result = group["result"] or {}
        return {
            "id": group_id,
            "client_id": group["client_id"],
            "created": group["created"],
            "finished": group["finished"],
            "status": "finished" if group["finished"] else "running",
            "sweep": group["sweep"],
            "jobs": [
                {
                    "id": j.id,
                    "status": j.status,
                    "values": j.request.get("sweep") or {},
                    "url": f"/jobs/{j.id}",
                    "outputs": (j.result or {}).get("outputs") or [],
                }
                for j in jobs
            ],
            "contact_sheets": result.get("contact_sheets") or [],
            "error": result.get("error"),
        }

    def sheet_file(self, group: dict[str, Any], name: str) -> Path | None:
        """One of the contact sheets of a described group: a name it lists, a file inside its
        folder; else None."""
        root = self.config.job_output_dir(group["id"]).resolve()
        path = (root / name).resolve()
        listed = {s["name"] for s in group["contact_sheets"]}
        if name not in listed or root not in path.parents or not path.is_file():
            return None
        return path
