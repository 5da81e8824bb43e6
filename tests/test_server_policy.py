"""What the server refuses that the CLI allows (server/policy.py), checked in-process
on real plans: URL schemes, and downloads when the operator turned them off."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import ASSETS
from nodeflow.context import Settings
from nodeflow.errors import GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.plan import build_plan
from nodeflow.server.policy import check_plan
from nodeflow.types import STRING

SHA = "0" * 64


class TFetch(Node):
    """Has a url but no locate(): the server can't tell whether it would download."""
    output_node = True

    class Inputs(NodeInputs):
        url: str | None = Input(None)

    class Outputs(NodeOutputs):
        text: Any = Output(STRING)

    def run(self, url: str | None) -> dict:
        return {"text": url or ""}


class TFetchBrokenLocate(TFetch):
    """locate() fails: counted as a download."""

    @classmethod
    def locate(cls, inputs: dict, settings: Any):
        raise RuntimeError("cannot tell")


class TFetchCount(TFetch):
    """A 'url' input that is not text: not a URL, never checked."""

    class Inputs(NodeInputs):
        url: int = Input(0)


def load(path: str, url: str | None) -> dict:
    return {"type": "LoadImage", "inputs": {"path": path, "url": url, "sha256": SHA}}


def plan_of(nodes: dict):
    return build_plan(parse_graph({"nodes": nodes}), Settings(input_dir=ASSETS))


def loaded(path: str, url: str | None):
    return plan_of({"load": load(path, url), "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}}}})


def refusals(plan, allow_downloads: bool) -> list[tuple[str, str, str]]:
    with pytest.raises(GraphInvalid) as info:
        check_plan(plan, allow_downloads)
    return [(i.code, i.node, i.input) for i in info.value.issues]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "FILE:///etc/passwd", "ftp://example.com/a.png",
                                 "/etc/passwd", "data:image/png;base64,AAAA"])
@pytest.mark.parametrize("allow", [True, False])
def test_only_http_urls_are_accepted_whatever_the_download_setting(url, allow):
    plan = loaded("missing.png", url)
    assert refusals(plan, allow) == [("url_refused", "load", "url")]
    with pytest.raises(GraphInvalid) as info:
        check_plan(plan, allow)
    assert info.value.issues[0].message.startswith("only http(s) URLs are fetched by the server, not ")
    assert url in info.value.issues[0].message


@pytest.mark.parametrize("url", ["https://example.com/a.png", "HTTP://example.com/a.png"])
def test_http_urls_pass_while_downloads_are_on(url):
    check_plan(loaded("missing.png", url), allow_downloads=True)


def test_downloads_off_refuses_only_a_file_that_would_be_downloaded():
    plan = loaded("missing.png", "https://example.com/a.png")
    assert refusals(plan, False) == [("downloads_off", "load", "url")]
    with pytest.raises(GraphInvalid) as info:
        check_plan(plan, False)
    message = info.value.issues[0].message
    assert message.startswith("this server does not download files") and "upload the file (POST /uploads)" in message
    check_plan(loaded("astronaut.png", "https://example.com/a.png"), allow_downloads=False)  # it is here


@pytest.mark.parametrize("node_type", ["TFetch", "TFetchBrokenLocate"])
def test_a_node_that_cannot_say_where_its_file_is_counts_as_a_download(node_type):
    plan = plan_of({"f": {"type": node_type, "inputs": {"url": "https://example.com/x"}}})
    assert refusals(plan, False) == [("downloads_off", "f", "url")]
    check_plan(plan, allow_downloads=True)


@pytest.mark.parametrize("inputs", [{}, {"url": ""}])
def test_no_url_is_not_checked(inputs):
    check_plan(plan_of({"f": {"type": "TFetch", "inputs": inputs}}), allow_downloads=False)
    check_plan(plan_of({"f": {"type": "TFetchCount", "inputs": {"url": 3}}}), allow_downloads=False)


def test_every_refusal_is_reported_at_once():
    plan = plan_of({
        "a": load("missing-a.png", "file:///etc/passwd"),
        "b": load("missing-b.png", "https://example.com/b.png"),
        "sa": {"type": "Save", "inputs": {"image": {"from": "a.image"}, "filename": "a.png"}},
        "sb": {"type": "Save", "inputs": {"image": {"from": "b.image"}, "filename": "b.png"}},
    })
    assert sorted(refusals(plan, False)) == [("downloads_off", "b", "url"), ("url_refused", "a", "url")]
