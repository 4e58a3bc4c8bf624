"""Finding promtool (Debian's `prometheus` package, installed by scripts/install_prometheus.sh) for the
rule and dashboard checks: skip locally when it is missing, fail in CI, where the set-up installs it."""

from __future__ import annotations

import shutil

from tests.tooling import missing_tool


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    missing_tool("promtool is missing: install it with scripts/install_prometheus.sh")
