"""What the server refuses that the CLI allows: rules on a validated plan.

Paths are confined by the engine itself (Settings(confine_paths=True)). Here: a
download URL in a graph must be http(s), so no client can make the server read a
local file through file:// (and learn its checksum from the error); and the
operator may turn downloads off altogether ($NODEFLOW_DOWNLOADS=0).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import GraphInvalid, Issue
from ..plan import Plan

URL_INPUTS = ("url",)
ALLOWED_SCHEMES = ("http", "https")


def check_plan(plan: Plan, allow_downloads: bool) -> None:
    issues = []
    for nid, p in plan.nodes.items():
        for name in URL_INPUTS:
            url = p.literals.get(name)
            if not isinstance(url, str) or not url:
                continue
            if urlsplit(url).scheme.lower() not in ALLOWED_SCHEMES:
                issues.append(Issue("url_refused", f"only http(s) URLs are fetched by the server, not {url!r}",
                                    nid, name))
            elif not allow_downloads and _would_download(p, plan):
                issues.append(Issue("downloads_off", "this server does not download files: upload the file "
                                    "(POST /uploads) and name it in 'path'", nid, name))
    if issues:
        raise GraphInvalid(issues)


def _would_download(p, plan: Plan) -> bool:
    """A node that tells where its file is (LoadImage.locate) downloads only when it's missing."""
    locate = getattr(p.cls, "locate", None)
    if locate is None:
        return True
    try:
        return not locate(p.literals, plan.settings)[1]
    except Exception:
        return True
