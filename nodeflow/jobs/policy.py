"""What the server refuses that the CLI allows: rules on a validated plan.

Paths are confined by the engine itself (Settings(confine_paths=True)). Here: a URL in a
graph must be http(s), so no client can make the server read a local file through
file:// (and learn its checksum from the error); and downloads are off unless the
operator turns them on (--allow-downloads): each node says what it would download
(Node.downloads), and with downloads off that is refused before the job is queued.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from nodeflow.errors import GraphInvalid, Issue, shown
from nodeflow.netpolicy import local_on_its_face, private_allowed
from nodeflow.node import Node
from nodeflow.plan import Plan

URL_INPUTS = ("url",)
ALLOWED_SCHEMES = ("http", "https")
BASE_DOWNLOADS = vars(Node)["downloads"].__func__  # a node class that doesn't say what it downloads


def check_plan(plan: Plan, allow_downloads: bool) -> None:
    issues = []
    for nid, p in plan.nodes.items():
        for name in URL_INPUTS:
            url = p.literals.get(name)
            if not isinstance(url, str) or not url:
                continue
            if urlsplit(url).scheme.lower() not in ALLOWED_SCHEMES:
                issues.append(
                    Issue("url_refused", f"only http(s) URLs are fetched by the server, not {shown(url)}", nid, name)
                )
            elif local_on_its_face(url) and not private_allowed():
                issues.append(
                    Issue(
                        "url_refused",
                        f"{shown(url)} names a local or private address: the server downloads only from public hosts",
                        nid,
                        name,
                    )
                )
        if allow_downloads or any(i.node == nid for i in issues):
            continue
        wanted = _downloads(p, plan)
        for input_name, what in wanted:
            issues.append(
                Issue(
                    "downloads_off",
                    f"this server does not download files ({shown(what)} is "
                    "not here): upload the file (POST /uploads) and name it instead, or ask the "
                    "operator to start the server with --allow-downloads",
                    nid,
                    input_name,
                )
            )
    if issues:
        raise GraphInvalid(issues)


def _downloads(p, plan: Plan) -> list[tuple[str | None, str]]:
    """What the node says it would download; a node that can't say (no downloads() of its
    own, or one that fails) and has a URL is taken to download it."""
    urls: list[tuple[str | None, str]] = [
        (name, p.literals[name]) for name in URL_INPUTS if isinstance(p.literals.get(name), str) and p.literals[name]
    ]
    if getattr(p.cls.downloads, "__func__", None) is BASE_DOWNLOADS:
        return urls
    try:
        return p.cls.downloads(dict(p.literals), plan.settings)
    except Exception:  # its own checks passed in build_plan; be safe rather than sorry
        return urls or [(None, "a file")]
