"""nodeflow.extras: whether an extra's packages are installed, asked without importing them."""

from __future__ import annotations

import sys

from nodeflow.extras import missing


def test_an_installed_distribution_is_not_missing():
    assert missing("server", "pydantic", "numpy") is None


def test_a_missing_distribution_names_the_extra_to_install():
    message = missing("ray", "numpy", "nodeflow-no-such-distribution")
    assert message == "nodeflow-no-such-distribution is not installed: pip install 'nodeflow[ray]'"
    assert "nodeflow_no_such_distribution" not in sys.modules
