"""Fixtures of the server tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def token_server(servers):
    """The shared live server that requires a token (`token_server.token`), logs every
    request (--log-level info) and answers to the host nodeflow.internal too."""
    return servers.shared("--log-level", "info", "--allowed-hosts", "nodeflow.internal", token="live-token-0123456789")
