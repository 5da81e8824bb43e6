"""Sweep groups (queued by POST /jobs with `sweep`): a group's jobs and its contact sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from nodeflow.jobs.groups import Groups

from .. import models as m
from ..deps import SweepGroups

router = APIRouter(tags=["jobs"])


def describe(groups: Groups, group_id: str) -> dict[str, Any]:
    group = groups.describe(group_id)
    if group is None:
        raise HTTPException(404, f"no group {group_id!r}")
    return group


@router.get("/groups/{group_id}", response_model=m.Group, responses={404: {"model": m.ErrorMessage}})
def group_detail(group_id: str, groups: SweepGroups) -> Any:
    """A sweep: its axes, its jobs with their values, and its contact sheets (drawn
    when its last job has ended)."""
    return describe(groups, group_id)


@router.get(
    "/groups/{group_id}/outputs/{name:path}",
    response_class=FileResponse,
    responses={404: {"model": m.ErrorMessage}},
)
def group_download(group_id: str, name: str, groups: SweepGroups) -> Any:
    """Download one of the group's contact sheets."""
    path = groups.sheet_file(describe(groups, group_id), name)
    if path is None:
        raise HTTPException(404, f"group {group_id} has no output {name!r}")
    return FileResponse(path, filename=Path(name).name)
