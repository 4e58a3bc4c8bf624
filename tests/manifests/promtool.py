"""Finding promtool (Debian's `prometheus` package, installed by scripts/install_prometheus.sh) for the
rule and dashboard checks: skip locally when it is missing, fail in CI, where the set-up installs it."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.vllm_cpu import in_ci


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool is missing: install it with scripts/install_prometheus.sh"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
