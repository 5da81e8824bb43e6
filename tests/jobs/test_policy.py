"""What the server refuses that the CLI allows (server/policy.py), checked in-process
on real plans: URL schemes, and downloads when the operator turned them off."""

from __future__ import annotations

from typing import Any

import pytest
from support.paths import ASSETS

from nodeflow.context import Settings
from nodeflow.errors import GraphInvalid
from nodeflow.graph import parse_graph
from nodeflow.jobs.policy import check_plan
from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.plan import build_plan
from nodeflow.types import STRING

SHA = "0" * 64


class TFetch(Node):
    """Has a url but no downloads() of its own: the server can't tell whether it would download."""

    output_node = True

    class Inputs(NodeInputs):
        url: str | None = Input(None)

    class Outputs(NodeOutputs):
        text: Any = Output(STRING)

    def run(self, url: str | None) -> dict:
        return {"text": url or ""}


class TFetchBrokenDownloads(TFetch):
    """downloads() fails: its url counts as a download, or, with none, 'a file'."""

    @classmethod
    def downloads(cls, inputs: dict, settings: Any):
        raise RuntimeError("cannot tell")


class TFetchSays(TFetch):
    """Says what it would download, under a name of its own choosing (not its url)."""

    @classmethod
    def downloads(cls, inputs: dict, settings: Any):
        return [("model", "weights.bin")] if inputs["url"] else []


class TFetchStatic(TFetch):
    """downloads() written as a staticmethod (it has no __func__): still asked."""

    @staticmethod
    def downloads(inputs: dict, settings: Any):
        return []


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


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "ftp://example.com/a.png",
        "/etc/passwd",
        "data:image/png;base64,AAAA",
    ],
)
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


@pytest.mark.parametrize("node_type", ["TFetch", "TFetchBrokenDownloads"])
def test_a_node_that_cannot_say_where_its_file_is_counts_as_a_download(node_type):
    plan = plan_of({"f": {"type": node_type, "inputs": {"url": "https://example.com/x"}}})
    assert refusals(plan, False) == [("downloads_off", "f", "url")]
    check_plan(plan, allow_downloads=True)


@pytest.mark.parametrize("inputs", [{}, {"url": ""}])
def test_no_url_is_not_checked(inputs):
    check_plan(plan_of({"f": {"type": "TFetch", "inputs": inputs}}), allow_downloads=False)
    check_plan(plan_of({"f": {"type": "TFetchCount", "inputs": {"url": 3}}}), allow_downloads=False)


def test_every_refusal_is_reported_at_once():
    plan = plan_of(
        {
            "a": load("missing-a.png", "file:///etc/passwd"),
            "b": load("missing-b.png", "https://example.com/b.png"),
            "sa": {"type": "Save", "inputs": {"image": {"from": "a.image"}, "filename": "a.png"}},
            "sb": {"type": "Save", "inputs": {"image": {"from": "b.image"}, "filename": "b.png"}},
        }
    )
    assert sorted(refusals(plan, False)) == [("downloads_off", "b", "url"), ("url_refused", "a", "url")]


def messages(plan, allow_downloads: bool) -> list[str]:
    with pytest.raises(GraphInvalid) as info:
        check_plan(plan, allow_downloads)
    return [f"{i.code} | {i}" for i in info.value.issues]


DOWNLOADS_OFF = (
    "this server does not download files ({} is not here): upload the file (POST /uploads) "
    "and name it instead, or ask the operator to start the server with --allow-downloads"
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "https://localhost:8188/a.png",
        "http://10.0.0.7/a.png",
        "http://[::1]/a.png",
        "http://169.254.169.254/latest",
        "http://x.localhost./a",
    ],
)
@pytest.mark.parametrize("allow", [True, False])
def test_a_url_naming_a_private_address_is_refused_in_process(monkeypatch, url, allow):
    monkeypatch.delenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", raising=False)
    plan = plan_of({"f": {"type": "TFetch", "inputs": {"url": url}}, "g": {"type": "TFetch", "inputs": {"url": url}}})
    refused = "names a local or private address: the server downloads only from public hosts"
    assert messages(plan, allow) == [f"url_refused | node '{n}', input 'url': {url!r} {refused}" for n in "fg"]


def test_private_addresses_pass_where_the_operator_allows_them(monkeypatch):
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "1")
    plan = plan_of({"f": {"type": "TFetch", "inputs": {"url": "http://127.0.0.1/a.png"}}})
    check_plan(plan, allow_downloads=True)
    # Downloads are still off unless the operator turned them on too.
    assert messages(plan, False) == [
        "downloads_off | node 'f', input 'url': " + DOWNLOADS_OFF.format("'http://127.0.0.1/a.png'")
    ]


def test_a_public_address_is_not_taken_for_a_private_one(monkeypatch):
    monkeypatch.delenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", raising=False)
    check_plan(plan_of({"f": {"type": "TFetch", "inputs": {"url": "http://93.184.215.14/a.png"}}}), True)


def test_the_scheme_refusal_in_exact_words():
    plan = plan_of({"f": {"type": "TFetch", "inputs": {"url": "file:///etc/passwd"}}})
    assert messages(plan, True) == [
        "url_refused | node 'f', input 'url': only http(s) URLs are fetched by the server, not 'file:///etc/passwd'"
    ]


def test_the_download_refusal_in_exact_words_names_what_the_node_would_fetch(assets):
    url = "https://example.com/a.png"
    assert messages(loaded("missing.png", url), False) == [
        f"downloads_off | node 'load', input 'url': {DOWNLOADS_OFF.format(repr(url))}"
    ]
    # A node that says what it downloads is taken at its word: its input, its file.
    said = plan_of({"f": {"type": "TFetchSays", "inputs": {"url": url}}})
    assert messages(said, False) == [
        f"downloads_off | node 'f', input 'model': {DOWNLOADS_OFF.format(repr('weights.bin'))}"
    ]
    check_plan(plan_of({"f": {"type": "TFetchSays", "inputs": {}}}), allow_downloads=False)


def test_a_node_whose_downloads_fails_without_a_url_counts_as_downloading_a_file():
    plan = plan_of({"f": {"type": "TFetchBrokenDownloads", "inputs": {}}})
    assert messages(plan, False) == [f"downloads_off | node 'f': {DOWNLOADS_OFF.format(repr('a file'))}"]
    check_plan(plan, allow_downloads=True)


def test_a_staticmethod_downloads_is_asked_too():
    check_plan(plan_of({"f": {"type": "TFetchStatic", "inputs": {"url": "https://example.com/x"}}}), False)


def test_a_refused_url_is_not_also_reported_as_a_download(monkeypatch):
    monkeypatch.delenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", raising=False)
    plan = plan_of(
        {
            "f": {"type": "TFetchSays", "inputs": {"url": "http://127.0.0.1/x"}},
            "g": {"type": "TFetchSays", "inputs": {"url": "https://example.com/x"}},
        }
    )
    assert [m.split(" |")[0] + " " + m.split("'")[1] for m in messages(plan, False)] == [
        "url_refused f",
        "downloads_off g",
    ]
